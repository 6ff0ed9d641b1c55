"""CloudFormation-shaped pre-signed ResponseURLs, one builder for the local AWS, the tests
and the benchmark. Standard library only.

CloudFormation hands a custom resource a pre-signed S3 PUT URL whose object key is
``<StackId>|<LogicalResourceId>|<RequestId>``, percent-encoded as a whole (``:`` ``/`` ``|``
included), with either a SigV2 query (``AWSAccessKeyId``, ``Expires``, ``Signature`` in
base64, so with ``%2B %2F %3D``) or a SigV4 one (``X-Amz-*``). S3 refuses the PUT unless
the URL comes back byte for byte (no decoding or re-encoding) and without a Content-Type
(the URL is signed with an empty one). Documented:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, unquote, urlsplit

# The key that signs local URLs; nothing verifies a signature, only byte equality.
_LOCAL_KEY = b"local-response-url"


def object_key(stack_id: str, logical_id: str, request_id: str) -> str:
    """The S3 object key CloudFormation reads the response from, encoded as in its URLs."""
    return quote(f"{stack_id}|{logical_id}|{request_id}", safe="")


def request_id_of(raw_path: str) -> str:
    """The RequestId at the end of a response URL's key."""
    return unquote(urlsplit(raw_path).path).rsplit("|", 1)[-1]


def presigned_path(
    prefix: str, key: str, *, style: str = "v2", region: str = "us-east-1", now: float | None = None
) -> str:
    """Path and query of a pre-signed PUT for ``key`` under ``prefix`` (e.g. ``/bucket/``).

    ``style`` is ``v2`` (AWSAccessKeyId/Expires/Signature) or ``v4`` (X-Amz-*).
    """
    now = time.time() if now is None else now
    if style == "v2":
        expires = int(now) + 7200
        digest = hmac.new(_LOCAL_KEY, f"PUT\n\n\n{expires}\n{prefix}{key}".encode(), hashlib.sha1).digest()
        signature = quote(base64.b64encode(digest).decode(), safe="")
        return f"{prefix}{key}?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires={expires}&Signature={signature}"
    if style == "v4":
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        credential = quote(f"AKIAIOSFODNN7EXAMPLE/{stamp[:8]}/{region}/s3/aws4_request", safe="")
        query = (
            f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={stamp}&X-Amz-SignedHeaders=host"
            f"&X-Amz-Expires=7200&X-Amz-Credential={credential}"
        )
        signature = hmac.new(_LOCAL_KEY, f"PUT\n{prefix}{key}\n{query}".encode(), hashlib.sha256).hexdigest()
        return f"{prefix}{key}?{query}&X-Amz-Signature={signature}"
    raise ValueError(f"style must be v2 or v4, not {style!r}")
