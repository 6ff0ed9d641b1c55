//! Lambda entry point: JSON logs for CloudWatch, then the runtime loop.

use ce_efs_tree::handler::Handler;
use lambda_runtime::{service_fn, LambdaEvent};
use tracing_subscriber::EnvFilter;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // RUST_LOG wins; otherwise the level set in the function's logging config.
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_new(filter.to_lowercase()).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .with_target(false)
        .init();

    let handler = Handler::from_env()?;
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { handler.invoke(event).await },
    ))
    .await
}
