//! Whole invocations through `Handler::handle`: the event goes in, exactly one response
//! comes out at the ResponseURL. Create/Update go through the real reconciler on a temp
//! dir and a signature-checking S3 server; faults use a scripted endpoint.

mod common;

use ce_efs_tree::certs::{CertReport, Status};
use ce_efs_tree::handler::{Failure, Handler, HandlerError, Outcome};
use common::{in_secs, sender, stored_json, STACK_ID};
use serde_json::{json, Value};
use sigcheck_s3::scripted::{ScriptedServer, Step};
use sigcheck_s3::S3Server;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

fn event(request_type: &str, response_url: &str, properties: Value) -> Value {
    json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:ce-efs-tree",
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": format!("{request_type}-request"),
        "LogicalResourceId": "EfsTree",
        "ResourceType": "Custom::EfsTree",
        "ResourceProperties": properties
    })
}

/// Owned by whoever runs the tests (root in CI), so chown succeeds either way.
fn properties() -> Value {
    let me = rustix::process::geteuid().as_raw();
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:ce-efs-tree",
        "Directories": [
            {"Path": "data/mongo-data", "Owner": me.to_string(), "Group": "0", "Mode": "0750"},
            {"Path": "data/rabbitmq", "Owner": me, "Group": 0, "Mode": "0755"}
        ],
        "Files": [
            {"Path": "data/rabbitmq/custom.conf", "Content": "consumer_timeout = 86400000\n",
             "Owner": me.to_string(), "Group": "0", "Mode": "0640", "Overwrite": "false"}
        ]
    })
}

/// Runs one event against a scripted endpoint that accepts it; returns the one body.
async fn answer_for(handler: &Handler, request_type: &str, properties: Value) -> Value {
    let server = ScriptedServer::start(vec![]).await.expect("server starts");
    let event = event(
        request_type,
        &server.url("/cfn/key?Signature=s"),
        properties,
    );
    handler
        .handle(&event, in_secs(5.0))
        .await
        .expect("answered");
    only_response(&server)
}

fn only_response(server: &ScriptedServer) -> Value {
    let [delivered] = server.delivered().try_into().expect("exactly one response");
    serde_json::from_slice(&delivered.body).expect("JSON body")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn create_update_delete_round_trip_through_s3() {
    let root = tempfile::tempdir().expect("temp dir");
    let mount = tempfile::tempdir().expect("temp dir");
    let s3 = S3Server::start(root.path(), 0).await.expect("S3 starts");
    let handler = Handler::new(mount.path().to_path_buf(), sender());

    let key = sigcheck_s3::cfn_key("Create-request");
    let create = event(
        "Create",
        &s3.presign_v4(&key, Duration::from_secs(300)),
        properties(),
    );
    handler
        .handle(&create, in_secs(5.0))
        .await
        .expect("answered");
    let created = stored_json(&s3, &key);
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let id = created["PhysicalResourceId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(id.starts_with("ce-efs-tree-"), "{id}");
    assert_eq!(created["StackId"], STACK_ID);
    assert_eq!(created["RequestId"], "Create-request");
    assert_eq!(created["LogicalResourceId"], "EfsTree");
    assert_eq!(created["Data"]["DirectoriesCreated"], "3"); // data, data/mongo-data, data/rabbitmq
    assert_eq!(created["Data"]["FilesWritten"], "1");
    assert_eq!(created["Data"]["Root"], mount.path().display().to_string());
    assert_eq!(mode(&mount.path().join("data/mongo-data")), 0o750);
    let conf = mount.path().join("data/rabbitmq/custom.conf");
    assert_eq!(
        std::fs::read_to_string(&conf).expect("seeded"),
        "consumer_timeout = 86400000\n"
    );
    assert_eq!(mode(&conf), 0o640);

    // An operator edits the seed file; an Update (SigV2 URL this time) must keep it.
    std::fs::write(&conf, "edited\n").expect("edit");
    let key = sigcheck_s3::cfn_key("Update-request");
    let mut update = event(
        "Update",
        &s3.presign_v2(&key, Duration::from_secs(300)),
        properties(),
    );
    update["PhysicalResourceId"] = json!(id);
    handler
        .handle(&update, in_secs(5.0))
        .await
        .expect("answered");
    let updated = stored_json(&s3, &key);
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(updated["PhysicalResourceId"], id.as_str());
    assert_eq!(updated["Data"]["DirectoriesCreated"], "0");
    assert_eq!(updated["Data"]["FilesWritten"], "0");
    assert_eq!(std::fs::read_to_string(&conf).expect("kept"), "edited\n");

    let key = sigcheck_s3::cfn_key("Delete-request");
    let mut delete = event(
        "Delete",
        &s3.presign_v4(&key, Duration::from_secs(300)),
        properties(),
    );
    delete["PhysicalResourceId"] = json!(id);
    handler
        .handle(&delete, in_secs(5.0))
        .await
        .expect("answered");
    let deleted = stored_json(&s3, &key);
    assert_eq!(deleted["Status"], "SUCCESS");
    assert_eq!(deleted["PhysicalResourceId"], id.as_str());
    assert!(conf.exists(), "Delete must retain the tree");
}

#[tokio::test]
async fn a_replayed_create_answers_the_same_id_and_changes_nothing() {
    let mount = tempfile::tempdir().expect("temp dir");
    let handler = Handler::new(mount.path().to_path_buf(), sender());

    let first = answer_for(&handler, "Create", properties()).await;
    let replay = answer_for(&handler, "Create", properties()).await;

    assert_eq!(first["Status"], "SUCCESS", "{first}");
    assert_eq!(replay["Status"], "SUCCESS", "{replay}");
    assert_eq!(first["PhysicalResourceId"], replay["PhysicalResourceId"]);
    assert_eq!(replay["Data"]["DirectoriesCreated"], "0");
    assert_eq!(replay["Data"]["FilesWritten"], "0");
}

#[tokio::test]
async fn invalid_properties_fail_naming_the_entry_and_write_nothing() {
    let mount = tempfile::tempdir().expect("temp dir");
    let handler = Handler::new(mount.path().to_path_buf(), sender());
    let mut bad = properties();
    bad["Directories"][1]["Mode"] = json!("0999");

    let answer = answer_for(&handler, "Create", bad).await;

    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().expect("reason");
    assert!(reason.contains("Directories[1].Mode"), "{reason}");
    assert!(answer["PhysicalResourceId"]
        .as_str()
        .is_some_and(|id| id.starts_with("ce-efs-tree-")));
    assert_eq!(
        std::fs::read_dir(mount.path()).expect("readable").count(),
        0,
        "something was written"
    );
}

#[tokio::test]
async fn delete_succeeds_with_invalid_properties_and_no_mount() {
    let handler = Handler::new("/nonexistent/efs/mount".into(), sender());
    let server = ScriptedServer::start(vec![]).await.expect("starts");
    let mut delete = event(
        "Delete",
        &server.url("/cfn/key?Signature=s"),
        json!({"Directories": "not a list"}),
    );
    delete["PhysicalResourceId"] = json!("ce-efs-tree-from-the-failed-create");

    handler
        .handle(&delete, in_secs(5.0))
        .await
        .expect("answered");

    let answer = only_response(&server);
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(
        answer["PhysicalResourceId"],
        "ce-efs-tree-from-the-failed-create"
    );
}

#[tokio::test]
async fn a_missing_mount_fails_create() {
    let handler = Handler::new("/nonexistent/efs/mount".into(), sender());

    let answer = answer_for(&handler, "Create", properties()).await;

    assert_eq!(answer["Status"], "FAILED");
    assert!(!answer["Reason"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn an_unknown_request_type_fails_naming_it() {
    let mount = tempfile::tempdir().expect("temp dir");
    let handler = Handler::new(mount.path().to_path_buf(), sender());

    let answer = answer_for(&handler, "Upsert", properties()).await;

    assert_eq!(answer["Status"], "FAILED");
    assert!(
        answer["Reason"]
            .as_str()
            .unwrap_or_default()
            .contains("\"Upsert\""),
        "{answer}"
    );
    assert!(!answer["PhysicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn a_panic_in_the_work_answers_failed() {
    let handler = Handler::with_work("/unused".into(), sender(), |_, _| panic!("boom"));

    let answer = answer_for(&handler, "Create", properties()).await;

    assert_eq!(answer["Status"], "FAILED");
    assert_eq!(answer["Reason"], "internal error: panic: boom");
}

/// The work outlives the invocation: the guard answers FAILED "timed out" with time to
/// spare for the PUT, and the late result is never sent.
#[tokio::test]
async fn the_deadline_guard_answers_before_the_deadline() {
    fn stuck(_: &Path, _: &Value) -> Result<Outcome, Failure> {
        std::thread::sleep(Duration::from_millis(2500));
        Ok(Outcome::default())
    }
    let handler = Handler::with_work("/unused".into(), sender(), stuck);
    let server = ScriptedServer::start(vec![]).await.expect("starts");
    let deadline = in_secs(1.2);

    handler
        .handle(
            &event("Update", &server.url("/cfn/key?Signature=s"), properties()),
            deadline,
        )
        .await
        .expect("answered");

    assert!(Instant::now() < deadline, "answered after the deadline");
    let answer = only_response(&server);
    assert_eq!(answer["Status"], "FAILED");
    assert!(
        answer["Reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("timed out"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_malformed_event_with_a_response_url_is_answered() {
    let handler = Handler::new("/unused".into(), sender());
    let server = ScriptedServer::start(vec![]).await.expect("starts");

    handler
        .handle(
            &json!({"ResponseURL": server.url("/cfn/key?Signature=s")}),
            in_secs(5.0),
        )
        .await
        .expect("answered");

    let answer = only_response(&server);
    assert_eq!(answer["Status"], "FAILED");
}

#[tokio::test]
async fn without_a_response_url_the_runtime_gets_an_error() {
    let handler = Handler::new("/unused".into(), sender());

    let result = handler
        .handle(&json!({"RequestType": "Create"}), in_secs(5.0))
        .await;

    assert!(
        matches!(result, Err(HandlerError::NoResponseUrl)),
        "{result:?}"
    );
}

/// A response that cannot be delivered is reported to the runtime, so that Lambda's
/// asynchronous retry may still deliver one; the retried 5xx shows the sender kept trying.
#[tokio::test]
async fn an_undeliverable_response_is_an_error_for_the_runtime() {
    let handler = Handler::new("/unused".into(), sender());
    let server = ScriptedServer::start(vec![Step::Reply(500), Step::Reply(403)])
        .await
        .expect("starts");

    let result = handler
        .handle(
            &event("Delete", &server.url("/cfn/key?Signature=s"), json!({})),
            in_secs(5.0),
        )
        .await;

    assert!(
        matches!(result, Err(HandlerError::Delivery(_))),
        "{result:?}"
    );
    assert_eq!(server.requests().len(), 2);
    assert!(server.delivered().is_empty());
}

/// Properties with one self-signed certificate, owned by whoever runs the tests.
fn properties_with_a_certificate() -> Value {
    let mut props = properties();
    props["Certificates"] = json!({
        "Leaves": [{
            "Name": "Ui", "Issuer": "Self", "CommonName": "localhost",
            "DnsNames": ["localhost"], "IpAddresses": ["127.0.0.1"],
            "ExtendedKeyUsage": ["ServerAuth"], "ValidityDays": "3650",
            "Certificate": { "Path": "data/ssl_certs/cte_cert.crt", "Mode": "0644" },
            "Key": { "Path": "data/ssl_certs/cte_cert_key.key", "Mode": "0600" }
        }]
    });
    props
}

#[tokio::test]
async fn certificates_are_reported_in_data_and_keys_never_in_the_response() {
    let mount = tempfile::tempdir().expect("temp dir");
    let handler = Handler::new(mount.path().to_path_buf(), sender());

    let created = answer_for(&handler, "Create", properties_with_a_certificate()).await;

    assert_eq!(created["Status"], "SUCCESS", "{created}");
    assert_eq!(created["Data"]["UiStatus"], "Created");
    let not_after = created["Data"]["UiNotAfter"].as_str().expect("NotAfter");
    assert!(
        not_after.len() == 20 && not_after.ends_with('Z') && not_after.as_bytes()[10] == b'T',
        "not RFC 3339 UTC: {not_after}"
    );
    assert_eq!(created["Data"]["FilesWritten"], "3"); // custom.conf, the key, the certificate
    let reason = created["Reason"].as_str().expect("reason");
    assert!(reason.ends_with("; certificates: Ui Created"), "{reason}");
    assert!(!created.to_string().contains("PRIVATE KEY"), "{created}");
    let key = mount.path().join("data/ssl_certs/cte_cert_key.key");
    assert!(std::fs::read_to_string(&key)
        .expect("key")
        .contains("PRIVATE KEY"));
    assert_eq!(mode(&key), 0o600);

    let updated = answer_for(&handler, "Update", properties_with_a_certificate()).await;
    assert_eq!(updated["Data"]["UiStatus"], "Unchanged");
    assert_eq!(updated["Data"]["UiNotAfter"], not_after);
    assert_eq!(updated["Data"]["FilesWritten"], "0");
}

#[tokio::test]
async fn a_certificate_problem_fails_naming_the_path() {
    let mount = tempfile::tempdir().expect("temp dir");
    let handler = Handler::new(mount.path().to_path_buf(), sender());
    let certs = mount.path().join("data/ssl_certs");
    std::fs::create_dir_all(&certs).expect("dir");
    std::fs::write(certs.join("cte_cert.crt"), "an operator's certificate").expect("cert");

    let answer = answer_for(&handler, "Create", properties_with_a_certificate()).await;

    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().expect("reason");
    assert!(
        reason.starts_with(
            "data/ssl_certs/cte_cert_key.key: missing while its certificate \
             data/ssl_certs/cte_cert.crt exists"
        ),
        "{reason}"
    );
    assert!(
        !mount.path().join("data/rabbitmq").exists(),
        "nothing was written"
    );
}

/// The largest `Data` the properties allow (12 certificates with 64-character names,
/// under a long stack ARN and request id) still fits CloudFormation's 4096 bytes, so it
/// is never dropped.
#[tokio::test]
async fn the_largest_data_fits_in_the_response() {
    fn twelve(_: &Path, _: &Value) -> Result<Outcome, Failure> {
        let certificates = (0..12)
            .map(|i| CertReport {
                name: format!("C{i:02}{}", "x".repeat(61)),
                status: Status::Unchanged,
                not_after: Some(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(50_000)),
            })
            .collect();
        Ok(Outcome {
            tree: Default::default(),
            certificates,
        })
    }
    let long_root = format!("/mnt/{}", "e".repeat(100));
    let handler = Handler::with_work(long_root.into(), sender(), twelve);
    let server = ScriptedServer::start(vec![]).await.expect("starts");
    let mut event = event("Update", &server.url("/cfn/key?Signature=s"), properties());
    event["StackId"] = json!(format!(
        "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/{}/5b6c6a40-0000-11ef-9f1a-0a1b2c3d4e5f",
        "s".repeat(128)
    ));
    event["PhysicalResourceId"] = json!(format!("ce-efs-tree-{}", "0".repeat(16)));
    event["LogicalResourceId"] = json!("E".repeat(255));

    handler
        .handle(&event, in_secs(5.0))
        .await
        .expect("answered");

    let [delivered] = server.delivered().try_into().expect("one response");
    assert!(
        delivered.body.len() <= 4096,
        "{} bytes",
        delivered.body.len()
    );
    let body: Value = serde_json::from_slice(&delivered.body).expect("JSON");
    assert_eq!(body["Data"].as_object().expect("Data kept").len(), 3 + 24);
}
