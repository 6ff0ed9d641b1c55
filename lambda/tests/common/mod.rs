//! What the delivery and handler tests share.

use ce_efs_tree::response::{ResponseSender, RetryPolicy};
use std::time::Duration;

/// Short timeouts so that fault tests finish in well under a few seconds.
pub fn sender() -> ResponseSender {
    ResponseSender::new(RetryPolicy {
        attempt_timeout: Duration::from_millis(400),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    })
    .expect("client builds")
}
