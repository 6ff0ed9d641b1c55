//! The CloudFormation response body and its delivery to the pre-signed ResponseURL.
//!
//! CloudFormation waits (up to an hour) for one JSON object PUT to an S3 pre-signed URL.
//! S3 checks that PUT against the signature, so it must carry exactly what was signed:
//! no `Content-Type` (SigV2 signs it, and CloudFormation signs it empty), the URL's path
//! byte for byte (its key holds `%3A`/`%7C` escapes that must be neither decoded nor
//! re-encoded), and a `Content-Length`. reqwest sends a `Vec<u8>` body with a
//! `Content-Length` and no `Content-Type`, and keeps the path's escapes as given; the
//! tests in `lambda/tests/response.rs` pin all three on the wire.

use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceResponse, CloudFormationCustomResourceResponseStatus,
};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::time::Instant;

/// What CloudFormation is told: SUCCESS or FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failed,
}

/// CloudFormation rejects response bodies larger than this.
pub const MAX_BODY_BYTES: usize = 4096;

/// Marks a Reason that was cut to fit [`MAX_BODY_BYTES`].
const ELLIPSIS: &str = "…";

/// The fields CloudFormation reads from a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    /// Returned for `Fn::GetAtt`; dropped if the body would exceed the cap.
    pub data: HashMap<String, String>,
}

impl Response {
    /// The JSON body, at most [`MAX_BODY_BYTES`] long: the Reason is shortened first (on a
    /// UTF-8 character boundary, ending in `…`), then `Data` is dropped. Ids come from
    /// CloudFormation and are far below the cap, so they are never cut.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut wire = CloudFormationCustomResourceResponse::default();
        wire.status = match self.status {
            Status::Success => CloudFormationCustomResourceResponseStatus::Success,
            Status::Failed => CloudFormationCustomResourceResponseStatus::Failed,
        };
        wire.reason = Some(self.reason.clone());
        wire.physical_resource_id
            .clone_from(&self.physical_resource_id);
        wire.stack_id.clone_from(&self.stack_id);
        wire.request_id.clone_from(&self.request_id);
        wire.logical_resource_id
            .clone_from(&self.logical_resource_id);
        wire.no_echo = false;
        wire.data.clone_from(&self.data);

        let mut body = serde_json::to_vec(&wire)?;
        while body.len() > MAX_BODY_BYTES {
            let reason = wire.reason.get_or_insert_with(String::new);
            if reason.is_empty() {
                break;
            }
            // JSON escapes can make the Reason longer on the wire than in memory, so cut
            // by the excess and re-measure; every round makes the Reason strictly shorter.
            let excess = body.len() - MAX_BODY_BYTES;
            let keep =
                floor_char_boundary(reason, reason.len().saturating_sub(excess + ELLIPSIS.len()));
            reason.truncate(keep);
            if keep > 0 {
                reason.push_str(ELLIPSIS);
            }
            body = serde_json::to_vec(&wire)?;
        }
        if body.len() > MAX_BODY_BYTES && !wire.data.is_empty() {
            wire.data.clear();
            body = serde_json::to_vec(&wire)?;
        }
        Ok(body)
    }
}

/// The largest index `<= at` that starts a character of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The URL without its query string, for logs: a pre-signed URL's query is a credential.
pub fn redacted(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_owned(),
    }
}

/// How hard delivery tries. Attempts continue until the caller's deadline; these only
/// shape each attempt and the pauses between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of one attempt (connect, send, read the answer), so that one hung
    /// connection cannot use up the whole deadline.
    pub attempt_timeout: Duration,
    /// Backoff ceiling after the first failure; doubles per attempt up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(10),
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter" backoff: uniform in `[0, min(max, first * 2^(attempt-1))]`, which
    /// spreads retries without a coordinated thundering herd.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_backoff);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random_u64() % ceiling_nanos.saturating_add(1))
    }
}

/// A non-cryptographic random number: std's `RandomState` is seeded randomly per
/// process and advances per instance. Jitter only needs spread, not secrecy.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
    #[error("the response body could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("ResponseURL {url} is not usable: {problem}")]
    BadUrl { url: String, problem: String },
    /// A final answer: 4xx other than 408/429 (403 = bad signature or expired URL).
    #[error("{url} refused the response: HTTP {status} {code}; not retried")]
    Rejected {
        url: String,
        status: u16,
        code: String,
    },
    #[error("gave up at the deadline after {attempts} attempt(s) to {url}; last: {last}")]
    Deadline {
        url: String,
        attempts: u32,
        last: String,
    },
}

/// PUTs response bodies to pre-signed URLs, retrying until a deadline.
#[derive(Debug, Clone)]
pub struct ResponseSender {
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl ResponseSender {
    pub fn new(policy: RetryPolicy) -> Result<Self, DeliveryError> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| DeliveryError::Client(describe(e)))?;
        Ok(Self { client, policy })
    }

    /// Delivers `body` to `url`, returning the number of attempts it took. Connection
    /// errors, attempt timeouts, 5xx, 408 and 429 are retried with backoff until
    /// `deadline`; any other non-2xx answer is final.
    pub async fn send(
        &self,
        url: &str,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<u32, DeliveryError> {
        let shown = redacted(url);
        let mut attempts = 0;
        let mut last = String::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // One attempt is always made: a deadline already past (a skewed clock, an
            // emulator) must not leave CloudFormation without even a try.
            let budget = match (remaining.is_zero(), attempts) {
                (true, 0) => self.policy.attempt_timeout,
                (true, _) => {
                    tracing::error!(url = %shown, attempts, last = %last, "giving up: deadline reached");
                    return Err(DeliveryError::Deadline {
                        url: shown,
                        attempts,
                        last,
                    });
                }
                (false, _) => remaining.min(self.policy.attempt_timeout),
            };
            attempts += 1;
            let sent = self
                .client
                .put(url)
                .body(body.clone())
                .timeout(budget)
                .send()
                .await;
            match sent {
                Ok(answer) if answer.status().is_success() => {
                    tracing::info!(url = %shown, attempts, status = answer.status().as_u16(), "response delivered");
                    return Ok(attempts);
                }
                Ok(answer) => {
                    let status = answer.status();
                    // S3 explains a refusal in an XML <Code>; the rest of its error body may
                    // echo parts of the request, so only the code is kept.
                    let code = answer
                        .text()
                        .await
                        .map(|t| s3_error_code(&t))
                        .unwrap_or_default();
                    if !is_retryable(status) {
                        tracing::error!(url = %shown, attempts, status = status.as_u16(), code = %code,
                            "response refused; a 403 means a bad signature or an expired URL");
                        return Err(DeliveryError::Rejected {
                            url: shown,
                            status: status.as_u16(),
                            code,
                        });
                    }
                    last = format!("HTTP {} {code}", status.as_u16());
                }
                Err(e) if e.is_builder() => {
                    return Err(DeliveryError::BadUrl {
                        url: shown,
                        problem: describe(e),
                    });
                }
                Err(e) => last = describe(e),
            }
            let pause = self
                .policy
                .backoff(attempts)
                .min(deadline.saturating_duration_since(Instant::now()));
            tracing::warn!(url = %shown, attempts, last = %last, pause_ms = pause.as_millis() as u64, "response not delivered yet; retrying");
            tokio::time::sleep(pause).await;
        }
    }
}

fn is_retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// The error and its causes, without the URL (reqwest would print it, query and all).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn s3_error_code(body: &str) -> String {
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(reason: &str) -> Response {
        Response {
            status: Status::Failed,
            reason: reason.to_owned(),
            physical_resource_id: "ce-efs-tree-0123456789abcdef".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/ce/guid".into(),
            request_id: "req".into(),
            logical_resource_id: "EfsTree".into(),
            data: HashMap::from([("Root".into(), "/mnt/efs".into())]),
        }
    }

    fn parse(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).expect("body is JSON")
    }

    #[test]
    fn body_has_every_field_cloudformation_reads() {
        let body = parse(&response("why").to_body().expect("encodes"));
        assert_eq!(body["Status"], "FAILED");
        assert_eq!(body["Reason"], "why");
        assert_eq!(body["PhysicalResourceId"], "ce-efs-tree-0123456789abcdef");
        assert_eq!(
            body["StackId"],
            "arn:aws:cloudformation:us-east-1:123456789012:stack/ce/guid"
        );
        assert_eq!(body["RequestId"], "req");
        assert_eq!(body["LogicalResourceId"], "EfsTree");
        assert_eq!(body["NoEcho"], false);
        assert_eq!(body["Data"]["Root"], "/mnt/efs");
    }

    #[test]
    fn long_reason_is_cut_on_a_char_boundary_and_data_kept() {
        // 3-byte characters, so a cut at an arbitrary byte would split one.
        let reason = "é€".repeat(2000);
        let body = response(&reason).to_body().expect("encodes");
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
        assert!(
            body.len() > MAX_BODY_BYTES - 16,
            "cut too much: {} bytes",
            body.len()
        );
        let body = parse(&body); // valid UTF-8 and JSON, so no character was split
        let cut = body["Reason"].as_str().expect("Reason is a string");
        assert!(cut.ends_with(ELLIPSIS));
        assert!(reason.starts_with(cut.trim_end_matches(ELLIPSIS)));
        assert_eq!(body["Data"]["Root"], "/mnt/efs");
    }

    #[test]
    fn escaped_reason_still_fits() {
        // Each control character is 1 byte in memory and 6 (`\u0001`) in JSON.
        let body = response(&"\u{1}".repeat(3000)).to_body().expect("encodes");
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
    }

    #[test]
    fn data_is_dropped_when_the_reason_alone_cannot_make_room() {
        let mut big = response("short");
        big.data = HashMap::from([("Blob".into(), "x".repeat(5000))]);
        let body = big.to_body().expect("encodes");
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
        assert_eq!(parse(&body)["Data"], serde_json::json!({}));
    }

    #[test]
    fn redaction_hides_the_query() {
        assert_eq!(
            redacted("https://b.s3.amazonaws.com/k%7Cx?AWSAccessKeyId=A&Signature=S"),
            "https://b.s3.amazonaws.com/k%7Cx?<redacted>"
        );
        assert_eq!(redacted("http://h/k"), "http://h/k");
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let policy = RetryPolicy {
            attempt_timeout: Duration::from_secs(1),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
        };
        let samples: Vec<_> = (0..64).map(|_| policy.backoff(10)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(
            samples.iter().any(|d| *d != samples[0]),
            "no jitter: {samples:?}"
        );
        assert!((0..64).all(|_| policy.backoff(1) <= Duration::from_millis(100)));
    }

    #[test]
    fn s3_error_code_is_extracted() {
        let xml = r#"<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><StringToSign>x</StringToSign></Error>"#;
        assert_eq!(s3_error_code(xml), "SignatureDoesNotMatch");
        assert_eq!(s3_error_code("nope"), "");
    }
}
