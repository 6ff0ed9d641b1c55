//! One invocation: validate → reconcile → respond, under a deadline guard.
//!
//! The event is read leniently (as JSON, field by field), so that even a malformed event
//! gets a FAILED response as long as it carries a ResponseURL. The filesystem work runs on
//! tokio's blocking pool and races a guard that fires early enough before the Lambda
//! deadline to leave time for the PUT; a panic in the work ends as a FAILED response too.
//! Whatever happens, exactly one response is sent per invocation.

use crate::certs::{self, CertReport, CertsError};
use crate::response::{redacted, DeliveryError, Response, ResponseSender, RetryPolicy, Status};
use crate::spec::{SpecError, TreeSpec};
use crate::tree::{self, TreeError, TreeReport};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tracing::Instrument as _;

/// Environment variable naming the EFS mount point.
pub const MOUNT_ENV: &str = "EFS_MOUNT_PATH";
/// Mount point used when [`MOUNT_ENV`] is unset.
pub const DEFAULT_MOUNT: &str = "/mnt/efs";
/// Time kept back from the work for the response PUT (and its retries) before the
/// deadline. Shorter invocations keep half of their time instead.
pub const RESPONSE_MARGIN: Duration = Duration::from_secs(10);
/// Delivery stops this long before the Lambda deadline, so the function still returns
/// (and logs) instead of being killed mid-PUT.
const RETURN_MARGIN: Duration = Duration::from_millis(250);

/// The reconcile step, replaceable in tests to make the work panic or hang.
pub type Work = fn(&Path, &Value) -> Result<Outcome, Failure>;

/// What a successful Create or Update did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub tree: TreeReport,
    /// One entry per declared certificate, authorities first.
    pub certificates: Vec<CertReport>,
}

/// Why a request ended FAILED; its `Display` is the Reason CloudFormation shows.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Certs(#[from] CertsError),
    #[error("internal error: panic: {0}")]
    Panic(String),
    #[error("timed out: the directory tree was not finished {}s into the invocation (Lambda timeout too short or EFS unreachable?)", .0.as_secs())]
    TimedOut(Duration),
    #[error("unknown RequestType {0:?} (expected Create, Update or Delete)")]
    UnknownRequestType(String),
}

/// Why an invocation ends in an error for the Lambda runtime: no response reached
/// CloudFormation. Returning an error lets Lambda's asynchronous retry replay the event,
/// which is safe (Create/Update are idempotent, Delete touches nothing) and may still
/// deliver the response before CloudFormation gives up.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the event has no ResponseURL, so no response can be sent")]
    NoResponseUrl,
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

impl HandlerError {
    /// The `errorType` Lambda records for this error (one per variant, so metrics
    /// filters and log queries can tell a missing ResponseURL from a failed delivery).
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::NoResponseUrl => "NoResponseUrl",
            HandlerError::Delivery(_) => "DeliveryFailed",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic {
            error_type: e.error_type().into(),
            error_message: e.to_string(),
        }
    }
}

/// The fields of a custom resource event this function uses; missing ones are empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub request_type: String,
    pub request_id: String,
    pub response_url: Option<String>,
    pub stack_id: String,
    pub logical_resource_id: String,
    pub physical_resource_id: Option<String>,
    pub properties: Value,
}

impl Request {
    pub fn from_event(event: &Value) -> Self {
        let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            request_type: text("RequestType").unwrap_or_default(),
            request_id: text("RequestId").unwrap_or_default(),
            response_url: text("ResponseURL").filter(|u| !u.is_empty()),
            stack_id: text("StackId").unwrap_or_default(),
            logical_resource_id: text("LogicalResourceId").unwrap_or_default(),
            physical_resource_id: text("PhysicalResourceId").filter(|id| !id.is_empty()),
            properties: event
                .get("ResourceProperties")
                .cloned()
                .unwrap_or(Value::Null),
        }
    }

    /// Create gets an id derived from the stack and logical id, so a replayed Create
    /// answers with the same id; Update and Delete echo the id CloudFormation sent.
    pub fn physical_resource_id(&self) -> String {
        match (&self.physical_resource_id, self.request_type.as_str()) {
            (Some(id), "Update" | "Delete") => id.clone(),
            _ => deterministic_id(&self.stack_id, &self.logical_resource_id),
        }
    }
}

/// `ce-efs-tree-` + FNV-1a-64 of `stack_id|logical_id`: a fixed, documented algorithm
/// (std's hasher may change between Rust releases), enough to tell resources apart.
fn deterministic_id(stack_id: &str, logical_id: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in stack_id.bytes().chain([b'|']).chain(logical_id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("ce-efs-tree-{hash:016x}")
}

/// Serialises reconciles within one execution environment: a reconcile abandoned by the
/// deadline guard keeps running and must not overlap the next invocation's.
static RECONCILE: Mutex<()> = Mutex::new(());

/// Validates the properties, reads existing certificates and keys, issues what is
/// missing or due, then builds the tree: nothing is written unless all of the properties
/// are valid and every certificate can be brought to its declared state. Keys go in a
/// first round with the declared tree, certificates in a second, so an interrupted run
/// never leaves a certificate without its key.
pub fn reconcile(mount: &Path, properties: &Value) -> Result<Outcome, Failure> {
    let spec = TreeSpec::from_properties(properties)?;
    let _one_at_a_time = RECONCILE.lock().unwrap_or_else(PoisonError::into_inner);
    let observed = certs::observe(mount, &spec.certificates)?;
    let issued = certs::issue(
        &spec.certificates,
        &observed,
        time::OffsetDateTime::now_utc(),
    )?;
    let TreeSpec {
        directories,
        mut files,
        ..
    } = spec;
    files.extend(issued.keys);
    let keys_round = TreeSpec {
        directories,
        files,
        ..TreeSpec::default()
    };
    let mut report = tree::apply(mount, &keys_round)?;
    if !issued.certificates.is_empty() {
        let certificates_round = TreeSpec {
            files: issued.certificates,
            ..TreeSpec::default()
        };
        let second = tree::apply(mount, &certificates_round)?;
        report.directories_created += second.directories_created;
        report.files_written += second.files_written;
    }
    Ok(Outcome {
        tree: report,
        certificates: issued.report,
    })
}

pub struct Handler {
    mount: PathBuf,
    sender: ResponseSender,
    work: Work,
}

impl Handler {
    pub fn new(mount: PathBuf, sender: ResponseSender) -> Self {
        Self::with_work(mount, sender, reconcile)
    }

    pub fn with_work(mount: PathBuf, sender: ResponseSender, work: Work) -> Self {
        Self {
            mount,
            sender,
            work,
        }
    }

    /// The mount from [`MOUNT_ENV`] and the default retry policy.
    pub fn from_env() -> Result<Self, DeliveryError> {
        let mount =
            std::env::var_os(MOUNT_ENV).map_or_else(|| PathBuf::from(DEFAULT_MOUNT), PathBuf::from);
        Ok(Self::new(
            mount,
            ResponseSender::new(RetryPolicy::default())?,
        ))
    }

    /// Entry point for the Lambda runtime.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<(), HandlerError> {
        let remaining = time_left(event.context.deadline, SystemTime::now());
        self.handle(&event.payload, Instant::now() + remaining)
            .await
    }

    /// Handles one event that must be answered before `deadline`.
    pub async fn handle(&self, event: &Value, deadline: Instant) -> Result<(), HandlerError> {
        let request = Request::from_event(event);
        let span = tracing::info_span!(
            "invocation",
            RequestType = %request.request_type,
            RequestId = %request.request_id,
            LogicalResourceId = %request.logical_resource_id,
        );
        self.respond(request, deadline).instrument(span).await
    }

    async fn respond(&self, request: Request, deadline: Instant) -> Result<(), HandlerError> {
        let Some(url) = request.response_url.clone() else {
            tracing::error!("event without ResponseURL; nothing to answer");
            return Err(HandlerError::NoResponseUrl);
        };
        tracing::info!(response_url = %redacted(&url),
            remaining_ms = deadline.saturating_duration_since(Instant::now()).as_millis() as u64,
            "request received");

        let outcome = match request.request_type.as_str() {
            "Create" | "Update" => self.guarded_work(&request, deadline).await,
            // The tree holds CE's data (MongoDB among it): it is always retained, and a
            // Delete must succeed even with bad properties or no mount, or rollbacks stick.
            "Delete" => Ok(None),
            other => Err(Failure::UnknownRequestType(other.to_owned())),
        };
        let response = self.response(&request, outcome);
        tracing::info!(status = ?response.status, reason = %response.reason,
            physical_resource_id = %response.physical_resource_id, "sending response");
        let body = response.to_body().map_err(DeliveryError::from)?;
        let delivery_deadline = deadline.checked_sub(RETURN_MARGIN).unwrap_or(deadline);
        self.sender.send(&url, body, delivery_deadline).await?;
        Ok(())
    }

    /// Runs the work on the blocking pool until it ends or the guard fires.
    async fn guarded_work(
        &self,
        request: &Request,
        deadline: Instant,
    ) -> Result<Option<Outcome>, Failure> {
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        let guard_at = deadline - RESPONSE_MARGIN.min(remaining / 2);
        let (work, mount, properties) = (self.work, self.mount.clone(), request.properties.clone());
        let task = tokio::task::spawn_blocking(move || work(&mount, &properties));
        tokio::select! {
            joined = task => match joined {
                Ok(result) => result.map(Some),
                Err(e) => Err(Failure::Panic(panic_message(e))),
            },
            () = tokio::time::sleep_until(guard_at) => {
                tracing::error!(elapsed_ms = started.elapsed().as_millis() as u64,
                    "deadline guard fired; the work is abandoned");
                Err(Failure::TimedOut(started.elapsed()))
            }
        }
    }

    /// The one place where an outcome becomes a response.
    fn response(&self, request: &Request, outcome: Result<Option<Outcome>, Failure>) -> Response {
        let (status, reason, data) = match outcome {
            Ok(Some(outcome)) => (
                Status::Success,
                success_reason(&request.request_type, &outcome, &self.mount),
                success_data(&outcome, &self.mount),
            ),
            Ok(None) => (
                Status::Success,
                "Delete: the directory tree is retained".to_owned(),
                HashMap::new(),
            ),
            Err(failure) => {
                tracing::error!(reason = %failure, "request failed");
                (Status::Failed, failure.to_string(), HashMap::new())
            }
        };
        Response {
            status,
            reason,
            physical_resource_id: request.physical_resource_id(),
            stack_id: request.stack_id.clone(),
            request_id: request.request_id.clone(),
            logical_resource_id: request.logical_resource_id.clone(),
            data,
        }
    }
}

fn success_reason(request_type: &str, outcome: &Outcome, mount: &Path) -> String {
    let mut reason = format!(
        "{request_type}: {} directories created, {} files written under {}",
        outcome.tree.directories_created,
        outcome.tree.files_written,
        mount.display()
    );
    if !outcome.certificates.is_empty() {
        let statuses: Vec<String> = outcome
            .certificates
            .iter()
            .map(|c| format!("{} {}", c.name, c.status.as_str()))
            .collect();
        reason.push_str("; certificates: ");
        reason.push_str(&statuses.join(", "));
    }
    reason
}

/// `DirectoriesCreated`, `FilesWritten`, `Root`, and per certificate `<Name>NotAfter`
/// (RFC 3339, UTC) and `<Name>Status`.
fn success_data(outcome: &Outcome, mount: &Path) -> HashMap<String, String> {
    let mut data = HashMap::from([
        (
            "DirectoriesCreated".to_owned(),
            outcome.tree.directories_created.to_string(),
        ),
        (
            "FilesWritten".to_owned(),
            outcome.tree.files_written.to_string(),
        ),
        ("Root".to_owned(), mount.display().to_string()),
    ]);
    for cert in &outcome.certificates {
        data.insert(
            format!("{}NotAfter", cert.name),
            certs::rfc3339(cert.not_after),
        );
        data.insert(
            format!("{}Status", cert.name),
            cert.status.as_str().to_owned(),
        );
    }
    data
}

/// Below this, `Lambda-Runtime-Deadline-Ms` cannot be a Unix time in milliseconds
/// (it would lie before September 2001).
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// Time left until the runtime's deadline. Lambda sends the deadline as Unix time in
/// milliseconds; cargo-lambda's emulator sends the time budget itself (e.g. `600000`),
/// which is taken as such rather than as a deadline in 1970.
fn time_left(deadline_ms: u64, now: SystemTime) -> Duration {
    if deadline_ms < EPOCH_MS_FLOOR {
        return Duration::from_millis(deadline_ms);
    }
    (SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms))
        .duration_since(now)
        .unwrap_or_default()
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-text panic payload".to_owned()),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(request_type: &str) -> Value {
        json!({
            "RequestType": request_type,
            "RequestId": "r1",
            "ResponseURL": "http://127.0.0.1:9/k?Signature=s",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ce/guid",
            "LogicalResourceId": "EfsTree",
            "PhysicalResourceId": "echoed-id",
            "ResourceProperties": {"Directories": []}
        })
    }

    #[test]
    fn create_id_is_deterministic_and_per_resource() {
        let a = Request::from_event(&event("Create")).physical_resource_id();
        assert_eq!(
            a,
            Request::from_event(&event("Create")).physical_resource_id()
        );
        assert!(
            a.starts_with("ce-efs-tree-") && a.len() == "ce-efs-tree-".len() + 16,
            "{a}"
        );
        let mut other = event("Create");
        other["LogicalResourceId"] = json!("OtherTree");
        assert_ne!(a, Request::from_event(&other).physical_resource_id());
        // Pinned: the id must not change between builds, or Updates would replace the resource.
        assert_eq!(a, "ce-efs-tree-67071f99b27157ba");
    }

    #[test]
    fn update_and_delete_echo_the_id_and_fall_back_when_missing() {
        assert_eq!(
            Request::from_event(&event("Update")).physical_resource_id(),
            "echoed-id"
        );
        assert_eq!(
            Request::from_event(&event("Delete")).physical_resource_id(),
            "echoed-id"
        );
        let mut bare = event("Delete");
        bare.as_object_mut().map(|o| o.remove("PhysicalResourceId"));
        assert!(Request::from_event(&bare)
            .physical_resource_id()
            .starts_with("ce-efs-tree-"));
    }

    #[test]
    fn time_left_reads_lambda_deadlines_and_emulator_budgets() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_000);
        assert_eq!(time_left(1_795_000_090_000, now), Duration::from_secs(90));
        assert_eq!(time_left(1_794_999_999_000, now), Duration::ZERO);
        assert_eq!(time_left(600_000, now), Duration::from_secs(600));
    }

    #[test]
    fn each_handler_error_has_its_own_error_type() {
        let missing = Diagnostic::from(HandlerError::NoResponseUrl);
        assert_eq!(missing.error_type, "NoResponseUrl");
        assert!(missing.error_message.contains("no ResponseURL"));
        let delivery = HandlerError::Delivery(DeliveryError::Client("no TLS roots".into()));
        assert_eq!(Diagnostic::from(delivery).error_type, "DeliveryFailed");
    }

    #[test]
    fn malformed_event_is_read_leniently() {
        let request = Request::from_event(&json!({"ResponseURL": "http://h/k", "RequestType": 7}));
        assert_eq!(request.response_url.as_deref(), Some("http://h/k"));
        assert_eq!(request.request_type, "");
        assert_eq!(
            Request::from_event(&json!("not an object")).response_url,
            None
        );
    }
}
