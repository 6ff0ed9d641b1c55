//! Lambda entry point: lambda_runtime's log subscriber, then the runtime loop.

use ce_efs_tree::handler::Handler;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Honours the function's LoggingConfig, which Lambda passes as AWS_LAMBDA_LOG_FORMAT
    // (JSON lines when "JSON") and AWS_LAMBDA_LOG_LEVEL (its ApplicationLogLevel; RUST_LOG
    // when that is unset, else INFO). CloudWatch stamps each line, so lines carry no time.
    lambda_runtime::tracing::init_default_subscriber();

    let handler = Handler::from_env()?;
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { handler.invoke(event).await },
    ))
    .await
}
