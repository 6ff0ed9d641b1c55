//! Test support for the EFS-tree Lambda: a local S3 server that verifies pre-signed URLs
//! the way S3 does, and the two pre-signing schemes CloudFormation's ResponseURLs use.
//!
//! The server is s3s-fs (objects are plain files under a root directory) behind s3s's
//! signature checks with one known key pair, so a response PUT that S3 would refuse (a
//! stray `Content-Type`, a re-encoded path) is refused here too. It binds 127.0.0.1 only.
//!
//! The pre-signers are written out by hand rather than taken from an SDK so that the
//! tests exercise the exact URL shapes CloudFormation hands to the function: SigV2 query
//! authentication (`AWSAccessKeyId`, `Expires`, `Signature`) and SigV4 (`X-Amz-*`).
//!
//! [`scripted`] is the other half: an endpoint that fails on purpose (5xx, hangs) and
//! records requests as they arrived on the wire.

pub mod scripted;

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use hyper_util::rt::{TokioExecutor, TokioIo};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Digest as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Access key the local server accepts. A fixed, public test value: it guards nothing but
/// a loopback server that lives for one test run.
pub const ACCESS_KEY: &str = "AKIDSIGCHECK";
/// Secret key paired with [`ACCESS_KEY`] (public test value, see there).
pub const SECRET_KEY: &str = "sigcheck-s3-secret-key";
/// Region used in SigV4 credential scopes.
pub const REGION: &str = "us-east-1";
/// The bucket tests write to. Short because s3s-fs names its metadata files
/// `base64(bucket) + base64(key)` and a file name must fit in 255 bytes.
pub const BUCKET: &str = "cfn";

/// An object key shaped like the ones CloudFormation uses for its responses:
/// `<stack arn>|<logical id>|<request id>`, with `:`, `/` and `|` that must survive encoding.
pub fn cfn_key(request_id: &str) -> String {
    format!(
        "arn:aws:cloudformation:us-east-1:123456789012:stack/ce/5b6c6a40-0000-11ef-9f1a-0a1b2c3d4e5f|EfsTree|{request_id}"
    )
}

#[derive(Debug, thiserror::Error)]
pub enum SigcheckError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("s3s-fs: {0}")]
    Fs(String),
}

/// A running S3 server on 127.0.0.1; stops when dropped.
pub struct S3Server {
    addr: SocketAddr,
    root: PathBuf,
    task: JoinHandle<()>,
}

impl S3Server {
    /// Serves `root` (which must exist) on `127.0.0.1:port` (0 = any free port) with
    /// [`BUCKET`] created, from the current tokio runtime.
    pub async fn start(root: &Path, port: u16) -> Result<Self, SigcheckError> {
        std::fs::create_dir_all(root.join(BUCKET))?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| SigcheckError::Fs(format!("{e:?}")))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();

        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    // A client hanging up mid-request is not the server's problem.
                    let _ = conn.await;
                });
            }
        });
        Ok(Self {
            addr,
            root: root.to_path_buf(),
            task,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where s3s-fs stores the object `key` of [`BUCKET`].
    pub fn object_path(&self, key: &str) -> PathBuf {
        object_path(&self.root, key)
    }

    /// A SigV2 pre-signed PUT URL for `key` in [`BUCKET`], valid for `ttl`.
    pub fn presign_v2(&self, key: &str, ttl: Duration) -> String {
        presign_v2(&self.endpoint(), BUCKET, key, SystemTime::now() + ttl)
    }

    /// A SigV4 pre-signed PUT URL for `key` in [`BUCKET`], valid for `ttl`.
    pub fn presign_v4(&self, key: &str, ttl: Duration) -> String {
        presign_v4(&self.endpoint(), BUCKET, key, SystemTime::now(), ttl)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where s3s-fs rooted at `root` stores the object `key` of [`BUCKET`].
pub fn object_path(root: &Path, key: &str) -> PathBuf {
    root.join(BUCKET).join(key)
}

/// Characters S3 leaves unencoded in a key path: RFC 3986 unreserved and `/`.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');
/// Query values: unreserved only (`/`, `+`, `=` in signatures and scopes are encoded).
const QUERY_ENCODE: &AsciiSet = &KEY_ENCODE.add(b'/');

/// `/bucket/key` with the key percent-encoded as S3 (and SigV4's canonical URI) expects.
fn encoded_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", utf8_percent_encode(key, KEY_ENCODE))
}

fn query(value: &str) -> String {
    utf8_percent_encode(value, QUERY_ENCODE).to_string()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// SigV2 query-string authentication for a PUT without Content-MD5 or Content-Type:
/// `Signature = base64(HMAC-SHA1(secret, "PUT\n\n\n{expires}\n/{bucket}/{key}"))`.
pub fn presign_v2(endpoint: &str, bucket: &str, key: &str, expires: SystemTime) -> String {
    let path = encoded_path(bucket, key);
    let expires = unix_secs(expires);
    let string_to_sign = format!("PUT\n\n\n{expires}\n{path}");
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(SECRET_KEY.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "{endpoint}{path}?AWSAccessKeyId={}&Expires={expires}&Signature={}",
        query(ACCESS_KEY),
        query(&signature)
    )
}

/// SigV4 query-string authentication for a PUT signing only `host`, with an unsigned payload.
pub fn presign_v4(
    endpoint: &str,
    bucket: &str,
    key: &str,
    now: SystemTime,
    ttl: Duration,
) -> String {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    let path = encoded_path(bucket, key);
    let amz_date = amz_date(unix_secs(now));
    let day = &amz_date[..8];
    let scope = format!("{day}/{REGION}/s3/aws4_request");
    // Already in canonical (sorted) order.
    let canonical_query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={}&X-Amz-SignedHeaders=host",
        query(&format!("{ACCESS_KEY}/{scope}")),
        ttl.as_secs()
    );
    let canonical_request =
        format!("PUT\n{path}\n{canonical_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha2::Sha256::digest(canonical_request.as_bytes()))
    );
    let mut signing_key = format!("AWS4{SECRET_KEY}").into_bytes();
    for part in [day, REGION, "s3", "aws4_request"] {
        signing_key = hmac_sha256(&signing_key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&signing_key, string_to_sign.as_bytes()));
    format!("{endpoint}{path}?{canonical_query}&X-Amz-Signature={signature}")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDD'T'HHMMSS'Z'` for a Unix time (civil-from-days, proleptic Gregorian calendar).
fn amz_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_matches_known_instants() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        // The example date in AWS's SigV4 documentation.
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(1_709_210_096), "20240229T123456Z");
    }

    #[test]
    fn key_path_keeps_slashes_and_encodes_the_rest() {
        assert_eq!(
            encoded_path("cfn", "arn:aws:x/y|L|r id"),
            "/cfn/arn%3Aaws%3Ax/y%7CL%7Cr%20id"
        );
    }
}
