"""STAND-IN for mongosh: makes the TLS handshake mongosh makes (server verified against
--tlsCAFile, the client certificate of --tlsCertificateKeyFile) with the mongod stand-in and
exits 0 when it answers. --eval and every other argument are accepted and not run: this proves
the connection our scripts open, not what they do over it."""

from __future__ import annotations

import argparse
import socket
import ssl
import sys


def main() -> int:
    parser = argparse.ArgumentParser(prog="mongosh (stand-in)", allow_abbrev=False)
    parser.add_argument("--tlsCAFile", required=True)
    parser.add_argument("--tlsCertificateKeyFile", required=True)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=27017)
    options, _ = parser.parse_known_args()
    context = ssl.create_default_context(cafile=options.tlsCAFile)
    context.load_cert_chain(options.tlsCertificateKeyFile)
    try:
        with (
            socket.create_connection((options.host, options.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=options.host) as connection,
        ):
            connection.sendall(b"ping\n")
            answer = connection.recv(16).strip()
    except (OSError, ssl.SSLError) as err:
        print(f"mongosh stand-in: {options.host}:{options.port}: {err}", file=sys.stderr)
        return 1
    return 0 if answer == b"pong" else 1


if __name__ == "__main__":
    sys.exit(main())
