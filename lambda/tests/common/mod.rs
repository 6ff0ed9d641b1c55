//! What the delivery and handler tests share.

use ce_efs_tree::response::{ResponseSender, RetryPolicy};
use sigcheck_s3::S3Server;
use std::time::Duration;
use tokio::time::Instant;

/// A stack ARN shaped like CloudFormation's.
pub const STACK_ID: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/ce/5b6c6a40-0000-11ef-9f1a-0a1b2c3d4e5f";

/// A deadline `secs` from now.
pub fn in_secs(secs: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(secs)
}

/// The response object the S3 server stored under `key`, parsed.
pub fn stored_json(server: &S3Server, key: &str) -> serde_json::Value {
    let stored = std::fs::read(server.object_path(key)).expect("object was stored");
    serde_json::from_slice(&stored).expect("stored object is JSON")
}

/// Short timeouts so that fault tests finish in well under a few seconds.
pub fn sender() -> ResponseSender {
    ResponseSender::new(RetryPolicy {
        attempt_timeout: Duration::from_millis(400),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    })
    .expect("client builds")
}
