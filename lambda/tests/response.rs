//! Response delivery on the wire: against a signature-checking S3 server (s3s-fs), and
//! against scripted endpoints that fail on purpose. Every test is bounded to seconds.

mod common;

use ce_efs_tree::response::{DeliveryError, Response, Status};
use common::{in_secs, sender, stored_json, STACK_ID};
use sigcheck_s3::scripted::{ScriptedServer, Step};
use sigcheck_s3::S3Server;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

fn response() -> Response {
    Response {
        status: Status::Success,
        reason: "Create: 2 directories created, 1 files written under /mnt/efs".into(),
        physical_resource_id: "ce-efs-tree-0123456789abcdef".into(),
        stack_id: STACK_ID.into(),
        request_id: "0f9c1ad2-3b4e-4f5a-9b6c-7d8e9fa0b1c2".into(),
        logical_resource_id: "EfsTree".into(),
        data: HashMap::from([
            ("DirectoriesCreated".into(), "2".into()),
            ("FilesWritten".into(), "1".into()),
            ("Root".into(), "/mnt/efs".into()),
        ]),
    }
}

fn body() -> Vec<u8> {
    response().to_body().expect("body encodes")
}

async fn s3() -> (tempfile::TempDir, S3Server) {
    let root = tempfile::tempdir().expect("temp dir");
    let server = S3Server::start(root.path(), 0)
        .await
        .expect("S3 server starts");
    (root, server)
}

async fn delivers_to_s3(presign: fn(&S3Server, &str, Duration) -> String) {
    let (_root, server) = s3().await;
    let key = sigcheck_s3::cfn_key("0f9c1ad2-3b4e-4f5a-9b6c-7d8e9fa0b1c2");
    let url = presign(&server, &key, Duration::from_secs(300));
    assert!(
        url.contains("%3A") && url.contains("%7C"),
        "key not encoded: {url}"
    );

    let attempts = sender()
        .send(&url, body(), in_secs(5.0))
        .await
        .expect("delivered");

    assert_eq!(attempts, 1);
    let stored = stored_json(&server, &key);
    assert_eq!(stored["Status"], "SUCCESS");
    assert_eq!(stored["PhysicalResourceId"], "ce-efs-tree-0123456789abcdef");
    assert_eq!(stored["RequestId"], "0f9c1ad2-3b4e-4f5a-9b6c-7d8e9fa0b1c2");
    assert_eq!(stored["LogicalResourceId"], "EfsTree");
    assert_eq!(stored["NoEcho"], false);
    assert_eq!(stored["Data"]["FilesWritten"], "1");
    assert_eq!(
        stored,
        serde_json::from_slice::<serde_json::Value>(&body()).expect("JSON")
    );
}

#[tokio::test]
async fn delivers_through_a_sigv2_presigned_url() {
    delivers_to_s3(S3Server::presign_v2).await;
}

#[tokio::test]
async fn delivers_through_a_sigv4_presigned_url() {
    delivers_to_s3(S3Server::presign_v4).await;
}

/// The S3 server really checks what SigV2 signs: the same URL with a Content-Type is
/// refused, so the delivery tests above prove the sender adds none.
#[tokio::test]
async fn s3_server_rejects_a_sigv2_put_with_content_type() {
    let (_root, server) = s3().await;
    let key = sigcheck_s3::cfn_key("ct");
    let url = server.presign_v2(&key, Duration::from_secs(300));

    let refused = reqwest::Client::new()
        .put(&url)
        .header("content-type", "application/json")
        .body(body())
        .send()
        .await
        .expect("server answers");
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap_or_default()
        .contains("SignatureDoesNotMatch"));
    assert!(!server.object_path(&key).exists());

    let accepted = reqwest::Client::new()
        .put(&url)
        .body(body())
        .send()
        .await
        .expect("server answers");
    assert_eq!(accepted.status(), 200);
}

/// A decoded path (`:` and `|` instead of `%3A`, `%7C`) breaks the SigV2 signature, so
/// delivering the percent-encoded key above proves the path went out unchanged.
#[tokio::test]
async fn s3_server_rejects_a_sigv2_put_with_a_decoded_path() {
    let (_root, server) = s3().await;
    let key = sigcheck_s3::cfn_key("decoded");
    let url = server.presign_v2(&key, Duration::from_secs(300));
    let decoded = url.replace("%3A", ":").replace("%7C", "|");

    let refused = reqwest::Client::new()
        .put(&decoded)
        .body(body())
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 403);
}

/// A refused signature (403) is final: no retry, an error naming the status, and the
/// query string (a credential) nowhere in the error.
#[tokio::test]
async fn a_bad_signature_is_not_retried() {
    let (_root, server) = s3().await;
    let key = sigcheck_s3::cfn_key("bad-sig");
    let url = server.presign_v4(&key, Duration::from_secs(300));
    let flipped = if url.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &url[..url.len() - 1]);

    let started = Instant::now();
    let err = sender()
        .send(&tampered, body(), in_secs(5.0))
        .await
        .expect_err("refused");

    assert!(started.elapsed() < Duration::from_secs(1));
    match &err {
        DeliveryError::Rejected { status, code, .. } => {
            assert_eq!(*status, 403);
            assert_eq!(code, "SignatureDoesNotMatch");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!err.to_string().contains("X-Amz-Signature"), "{err}");
}

/// What goes on the wire: the request line byte for byte (path escapes, `%2F`, and
/// the query untouched), Content-Length, and no Content-Type.
#[tokio::test]
async fn the_request_is_sent_exactly_as_s3_expects() {
    let server = ScriptedServer::start(vec![]).await.expect("server starts");
    let path_and_query =
        "/bkt/arn%3Aaws%3Acloudformation%3Aus-east-1%3A123%3Astack%2Fs%2Fid%7CLogical%7Creq\
        ?AWSAccessKeyId=AKID&Expires=1700000000&Signature=ab%2Bc%2Fd%3D";
    let body = body();

    sender()
        .send(&server.url(path_and_query), body.clone(), in_secs(5.0))
        .await
        .expect("delivered");

    let [request] = server.requests().try_into().expect("exactly one request");
    assert_eq!(
        request.request_line,
        format!("PUT {path_and_query} HTTP/1.1")
    );
    assert_eq!(
        request.header("content-type"),
        None,
        "{:?}",
        request.headers
    );
    assert_eq!(
        request.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(request.body, body);
}

#[tokio::test]
async fn retries_503_then_delivers_exactly_once() {
    let server = ScriptedServer::start(vec![Step::Reply(503), Step::Reply(503)])
        .await
        .expect("starts");

    let body = body();

    let attempts = sender()
        .send(&server.url("/b/k"), body.clone(), in_secs(5.0))
        .await
        .expect("delivered");

    assert_eq!(attempts, 3);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.delivered().len(), 1);
    assert!(server.requests().iter().all(|r| r.body == body));
}

#[tokio::test]
async fn retries_408_and_429() {
    let server = ScriptedServer::start(vec![Step::Reply(408), Step::Reply(429)])
        .await
        .expect("starts");

    let attempts = sender()
        .send(&server.url("/b/k"), body(), in_secs(5.0))
        .await
        .expect("delivered");

    assert_eq!(attempts, 3);
    assert_eq!(server.delivered().len(), 1);
}

#[tokio::test]
async fn a_hung_first_attempt_is_retried_before_the_deadline() {
    let server = ScriptedServer::start(vec![Step::Hang])
        .await
        .expect("starts");
    let deadline = in_secs(3.0);

    let attempts = sender()
        .send(&server.url("/b/k"), body(), deadline)
        .await
        .expect("delivered");

    assert_eq!(attempts, 2);
    assert!(Instant::now() < deadline);
    assert_eq!(server.delivered().len(), 1);
}

#[tokio::test]
async fn other_4xx_are_final() {
    let server = ScriptedServer::start(vec![Step::Reply(404)])
        .await
        .expect("starts");

    let err = sender()
        .send(&server.url("/b/k"), body(), in_secs(5.0))
        .await
        .expect_err("final");

    assert!(
        matches!(err, DeliveryError::Rejected { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

/// With nobody listening, delivery keeps trying and gives up at the deadline, not before.
#[tokio::test]
async fn connection_errors_are_retried_until_the_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port(); // the listener is dropped here: connections are refused
    let deadline = in_secs(0.8);

    let err = sender()
        .send(
            &format!("http://127.0.0.1:{port}/b/k?Signature=secret"),
            body(),
            deadline,
        )
        .await
        .expect_err("nobody listens");

    assert!(Instant::now() >= deadline);
    assert!(Instant::now() < deadline + Duration::from_millis(300));
    match &err {
        DeliveryError::Deadline { attempts, .. } => assert!(*attempts > 1, "{err}"),
        other => panic!("expected Deadline, got {other:?}"),
    }
    assert!(!err.to_string().contains("secret"), "{err}");
}

/// A deadline already past (skewed clock, emulator) still gets one attempt, and only one.
#[tokio::test]
async fn a_past_deadline_still_gets_one_attempt() {
    let server = ScriptedServer::start(vec![Step::Reply(503)])
        .await
        .expect("starts");
    let body = body();

    let err = sender()
        .send(&server.url("/b/k"), body.clone(), Instant::now())
        .await
        .expect_err("503 and no time to retry");

    assert!(
        matches!(err, DeliveryError::Deadline { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);

    let accepting = ScriptedServer::start(vec![]).await.expect("starts");
    let attempts = sender()
        .send(&accepting.url("/b/k"), body, Instant::now())
        .await
        .expect("delivered");
    assert_eq!(attempts, 1);
    assert_eq!(accepting.delivered().len(), 1);
}
