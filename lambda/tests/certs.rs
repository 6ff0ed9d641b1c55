//! TLS material end to end: issued on a real directory through `handler::reconcile`,
//! checked with the `openssl` command line (chain, names, usages, key match, a real
//! handshake with CE's cipher settings), renewed only when due, never regenerated, an
//! operator's files left alone, and no key in a log line. The planner alone is pinned on
//! planted material at the end.

use ce_efs_tree::certs::{
    self, CertAction, CertsError, CombinedAction, KeyAction, Observed, Plan, Planned,
};
use ce_efs_tree::handler::{self, Failure, Outcome};
use ce_efs_tree::spec::{RelPath, TreeSpec};
use rcgen::{CertificateParams, DnType, IsCa, KeyPair};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const CA_CERT: &str = "data/ssl_certs/mongodb_rabbitmq_certs/tls_cert_ca.crt";
const CA_KEY: &str = "ca/tls_cert_ca.key";
const TLS_CERT: &str = "data/ssl_certs/mongodb_rabbitmq_certs/tls_cert.crt";
const TLS_KEY: &str = "data/ssl_certs/mongodb_rabbitmq_certs/tls_cert_key.key";
const TLS_PEM: &str = "data/ssl_certs/mongodb_rabbitmq_certs/tls_cert_key.pem";
const UI_CERT: &str = "data/ssl_certs/cte_cert.crt";
const UI_KEY: &str = "data/ssl_certs/cte_cert_key.key";
const ALL: [&str; 7] = [CA_CERT, CA_KEY, TLS_CERT, TLS_KEY, TLS_PEM, UI_CERT, UI_KEY];

/// CE's TLS 1.2 suites in `data/rabbitmq/custom.conf` and MongoDB's `opensslCipherConfig`.
const CE_TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
     ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
     ECDHE-RSA-CHACHA20-POLY1305";
/// CE's TLS 1.3 suites (MongoDB's `opensslCipherSuiteConfig`, RabbitMQ's first four).
const CE_TLS13_SUITES: &str =
    "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256";

/// The template's declaration, shaped like CE's `setup`.
fn properties() -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:ce-efs-tree",
        "Directories": [
            { "Path": "ca", "Owner": "0", "Group": "0", "Mode": "0700" },
            { "Path": "data/ssl_certs", "Owner": "1001", "Group": "1001", "Mode": "0755" },
            { "Path": "data/ssl_certs/mongodb_rabbitmq_certs", "Owner": "1001", "Group": "1001", "Mode": "0755" }
        ],
        "Certificates": {
            "RenewBeforeDays": "30",
            "Authorities": [{
                "Name": "InternalCa",
                "CommonName": "Cloud Exchange internal CA",
                "ValidityDays": "7300",
                "Certificate": { "Path": CA_CERT, "Owner": "1001", "Group": "1001", "Mode": "0644" },
                "Key": { "Path": CA_KEY, "Owner": "0", "Group": "0", "Mode": "0600" }
            }],
            "Leaves": [{
                "Name": "InternalTls",
                "Issuer": "InternalCa",
                "CommonName": "localhost",
                "DnsNames": ["localhost", "mongodb-primary", "rabbitmq-stats", "host.docker.internal"],
                "IpAddresses": ["127.0.0.1"],
                "ExtendedKeyUsage": ["ServerAuth", "ClientAuth"],
                "ValidityDays": "3650",
                "Certificate": { "Path": TLS_CERT, "Owner": "1001", "Group": "1001", "Mode": "0644" },
                "Key": { "Path": TLS_KEY, "Owner": "1001", "Group": "1001", "Mode": "0600" },
                "CombinedPem": { "Path": TLS_PEM, "Owner": "1001", "Group": "1001", "Mode": "0600" }
            }, {
                "Name": "Ui",
                "Issuer": "Self",
                "CommonName": "localhost",
                "DnsNames": ["localhost"],
                "IpAddresses": ["127.0.0.1"],
                "ExtendedKeyUsage": ["ServerAuth"],
                "ValidityDays": "3650",
                "Certificate": { "Path": UI_CERT, "Owner": "1001", "Group": "1001", "Mode": "0644" },
                "Key": { "Path": UI_KEY, "Owner": "1001", "Group": "1001", "Mode": "0600" }
            }]
        }
    })
}

struct Mount {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Mount {
    fn new() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "the certificate tests set owners and must run as root"
        );
        capture_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        Self { _dir: dir, path }
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.at(rel)).expect("readable")
    }

    fn write(&self, rel: &str, content: &str) {
        fs::write(self.at(rel), content).expect("written");
    }

    fn reconcile(&self) -> Result<Outcome, Failure> {
        handler::reconcile(&self.path, &properties())
    }

    fn created(&self) -> Outcome {
        self.reconcile().expect("reconciled")
    }
}

fn statuses(outcome: &Outcome) -> Vec<(String, &'static str)> {
    outcome
        .certificates
        .iter()
        .map(|c| (c.name.clone(), c.status.as_str()))
        .collect()
}

fn expect_statuses(outcome: &Outcome, expected: [&str; 3]) {
    let names = ["InternalCa", "InternalTls", "Ui"];
    let expected: Vec<(String, &str)> = names
        .iter()
        .zip(expected)
        .map(|(n, s)| ((*n).to_owned(), s))
        .collect();
    assert_eq!(statuses(outcome), expected);
}

/// Bytes, inode, mode, owner, mtime and ctime (to the nanosecond) of every declared file.
fn snapshot(mount: &Mount) -> BTreeMap<&'static str, String> {
    ALL.iter()
        .map(|rel| {
            let path = mount.at(rel);
            let meta = fs::symlink_metadata(&path).expect("exists");
            let bytes = fs::read(&path).expect("readable");
            let shown = format!(
                "ino={} mode={:o} uid={} gid={} mtime={}.{} ctime={}.{} bytes={:?}",
                meta.ino(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                String::from_utf8_lossy(&bytes)
            );
            (*rel, shown)
        })
        .collect()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command runs")
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The public key of a certificate and of a key file, as openssl prints them.
fn public_keys(mount: &Mount, cert: &str, key: &str) -> (String, String) {
    (
        openssl_ok(&[
            "x509",
            "-in",
            path_str(&mount.at(cert)),
            "-noout",
            "-pubkey",
        ]),
        openssl_ok(&["pkey", "-in", path_str(&mount.at(key)), "-pubout"]),
    )
}

fn extension(mount: &Mount, cert: &str, name: &str) -> String {
    openssl_ok(&[
        "x509",
        "-in",
        path_str(&mount.at(cert)),
        "-noout",
        "-ext",
        name,
    ])
}

fn mode(path: &Path) -> (u32, u32, u32) {
    let meta = fs::symlink_metadata(path).expect("exists");
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

#[test]
fn create_issues_a_chain_that_openssl_verifies() {
    let m = Mount::new();
    let outcome = m.created();
    expect_statuses(&outcome, ["Created", "Created", "Created"]);

    let verified = openssl_ok(&[
        "verify",
        "-CAfile",
        path_str(&m.at(CA_CERT)),
        "-purpose",
        "sslserver",
        path_str(&m.at(TLS_CERT)),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    openssl_ok(&[
        "verify",
        "-CAfile",
        path_str(&m.at(CA_CERT)),
        "-purpose",
        "sslclient",
        path_str(&m.at(TLS_CERT)),
    ]);
    // The UI's certificate is its own trust anchor, like the reference's.
    openssl_ok(&[
        "verify",
        "-CAfile",
        path_str(&m.at(UI_CERT)),
        "-purpose",
        "sslserver",
        path_str(&m.at(UI_CERT)),
    ]);

    let san = extension(&m, TLS_CERT, "subjectAltName");
    for name in [
        "DNS:localhost",
        "DNS:mongodb-primary",
        "DNS:rabbitmq-stats",
        "DNS:host.docker.internal",
        "IP Address:127.0.0.1",
    ] {
        assert!(san.contains(name), "{name} missing from {san}");
    }
    let eku = extension(&m, TLS_CERT, "extendedKeyUsage");
    assert!(
        eku.contains("TLS Web Server Authentication")
            && eku.contains("TLS Web Client Authentication"),
        "{eku}"
    );
    let ui_eku = extension(&m, UI_CERT, "extendedKeyUsage");
    assert!(ui_eku.contains("TLS Web Server Authentication"), "{ui_eku}");
    assert!(!ui_eku.contains("Client"), "{ui_eku}");
    let ca = extension(&m, CA_CERT, "basicConstraints,keyUsage");
    assert!(
        ca.contains("CA:TRUE") && ca.contains("Certificate Sign"),
        "{ca}"
    );
    let subject = openssl_ok(&[
        "x509",
        "-in",
        path_str(&m.at(CA_CERT)),
        "-noout",
        "-subject",
    ]);
    assert!(subject.contains("Cloud Exchange internal CA"), "{subject}");

    for (cert, key) in [(CA_CERT, CA_KEY), (TLS_CERT, TLS_KEY), (UI_CERT, UI_KEY)] {
        let (from_cert, from_key) = public_keys(&m, cert, key);
        assert_eq!(from_cert, from_key, "{cert} does not match {key}");
        let text = openssl_ok(&["pkey", "-in", path_str(&m.at(key)), "-noout", "-text"]);
        assert!(text.contains("prime256v1"), "{key} is not P-256: {text}");
    }
    assert_eq!(
        m.read(TLS_PEM),
        format!("{}{}", m.read(TLS_CERT), m.read(TLS_KEY)),
        "CombinedPem is the certificate followed by the key"
    );

    assert_eq!(mode(&m.at(CA_KEY)), (0o600, 0, 0));
    assert_eq!(mode(&m.at(CA_CERT)), (0o644, 1001, 1001));
    assert_eq!(mode(&m.at(TLS_KEY)), (0o600, 1001, 1001));
    assert_eq!(mode(&m.at(TLS_PEM)), (0o600, 1001, 1001));
    assert_eq!(mode(&m.at(UI_KEY)), (0o600, 1001, 1001));
    assert_eq!(mode(&m.at("ca")), (0o700, 0, 0));
    assert_eq!(outcome.tree.files_written, 7);
}

#[test]
fn a_second_run_changes_nothing() {
    let m = Mount::new();
    let first = m.created();
    let before = snapshot(&m);

    let second = m.created();

    expect_statuses(&second, ["Unchanged", "Unchanged", "Unchanged"]);
    assert_eq!(snapshot(&m), before);
    assert_eq!(second.tree.files_written, 0);
    assert_eq!(second.tree.directories_created, 0);
    let not_after = |o: &Outcome| {
        o.certificates
            .iter()
            .map(|c| c.not_after)
            .collect::<Vec<_>>()
    };
    assert_eq!(not_after(&first), not_after(&second));
}

/// Signs a certificate for `key` by `ca_key`/`ca_cert` (or self-signed) that expires in
/// `days`, as an earlier run of ours would have.
fn planted(key: &KeyPair, issuer: Option<(&KeyPair, &str)>, days: i64, names: &[&str]) -> String {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(300);
    params.not_after = now + time::Duration::days(days);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::ExplicitNoCa;
    match issuer {
        Some((ca_key, ca_pem)) => {
            params.use_authority_key_identifier_extension = true;
            let issuer = rcgen::Issuer::from_ca_cert_pem(ca_pem, ca_key).expect("issuer");
            params.signed_by(key, &issuer).expect("signed").pem()
        }
        None => params.self_signed(key).expect("signed").pem(),
    }
}

fn key_of(m: &Mount, rel: &str) -> KeyPair {
    KeyPair::from_pem(&m.read(rel)).expect("a key")
}

#[test]
fn renewal_reissues_only_the_certificate_that_is_due_with_its_key() {
    let m = Mount::new();
    m.created();
    let due = planted(
        &key_of(&m, TLS_KEY),
        Some((&key_of(&m, CA_KEY), &m.read(CA_CERT))),
        10,
        &["localhost"],
    );
    m.write(TLS_CERT, &due);
    let before = snapshot(&m);

    let outcome = m.created();

    expect_statuses(&outcome, ["Unchanged", "Renewed", "Unchanged"]);
    let after = snapshot(&m);
    let changed: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|p| before[p] != after[p])
        .collect();
    assert_eq!(
        changed,
        [TLS_CERT, TLS_PEM],
        "only the due certificate and its PEM"
    );
    assert_ne!(m.read(TLS_CERT), due);
    let (from_cert, from_key) = public_keys(&m, TLS_CERT, TLS_KEY);
    assert_eq!(from_cert, from_key, "renewed with the same key");
    openssl_ok(&[
        "verify",
        "-CAfile",
        path_str(&m.at(CA_CERT)),
        path_str(&m.at(TLS_CERT)),
    ]);
    assert_eq!(
        m.read(TLS_PEM),
        format!("{}{}", m.read(TLS_CERT), m.read(TLS_KEY))
    );
    let san = extension(&m, TLS_CERT, "subjectAltName");
    assert!(
        san.contains("DNS:rabbitmq-stats"),
        "renewed with the declared names: {san}"
    );
    let renewed = &outcome.certificates[1];
    let years = (renewed.not_after.expect("parsed") - OffsetDateTime::now_utc()).whole_days();
    assert!((3649..=3650).contains(&years), "{years} days");

    // The renewed certificate is not due: the next run leaves everything as it is.
    let settled = snapshot(&m);
    expect_statuses(&m.created(), ["Unchanged", "Unchanged", "Unchanged"]);
    assert_eq!(snapshot(&m), settled);
}

#[test]
fn a_renewed_authority_keeps_subject_and_key_so_existing_leaves_still_verify() {
    let m = Mount::new();
    m.created();
    let ca_key = key_of(&m, CA_KEY);
    // The authority as an earlier run made it, ten days from expiry.
    let mut params = CertificateParams::default();
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(7000);
    params.not_after = now + time::Duration::days(10);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Cloud Exchange internal CA");
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    m.write(CA_CERT, &params.self_signed(&ca_key).expect("signed").pem());
    let leaf_before = m.read(TLS_CERT);

    let outcome = m.created();

    expect_statuses(&outcome, ["Renewed", "Unchanged", "Unchanged"]);
    assert_eq!(m.read(TLS_CERT), leaf_before, "the leaf is not due");
    openssl_ok(&[
        "verify",
        "-CAfile",
        path_str(&m.at(CA_CERT)),
        path_str(&m.at(TLS_CERT)),
    ]);
    let (from_cert, from_key) = public_keys(&m, CA_CERT, CA_KEY);
    assert_eq!(from_cert, from_key);
}

#[test]
fn an_operators_certificate_is_left_alone_and_reported() {
    let m = Mount::new();
    m.created();
    // The operator brings their own UI certificate, issued by their company's CA, and key.
    // (A self-signed pair would be indistinguishable from ours, and renewed as ours.)
    let company = KeyPair::generate().expect("key");
    let own_key = KeyPair::generate().expect("key");
    let own_cert = planted(
        &own_key,
        Some((&company, &planted_ca(&company))),
        365,
        &["ce.example.com"],
    );
    m.write(UI_CERT, &own_cert);
    m.write(UI_KEY, &own_key.serialize_pem());
    // And something that is not a certificate where the internal one was.
    m.write(TLS_CERT, "not a certificate\n");
    let before = snapshot(&m);

    let outcome = m.created();

    expect_statuses(&outcome, ["Unchanged", "Operator", "Operator"]);
    assert_eq!(snapshot(&m), before, "nothing was rewritten");
    assert_eq!(outcome.certificates[1].not_after, None);
    assert!(outcome.certificates[2].not_after.is_some());
}

#[test]
fn a_certificate_expiring_soon_that_is_not_ours_is_not_renewed() {
    let m = Mount::new();
    m.created();
    let stranger = KeyPair::generate().expect("key");
    let due_but_foreign = planted(
        &key_of(&m, TLS_KEY),
        Some((&stranger, &planted_ca(&stranger))),
        5,
        &["localhost"],
    );
    m.write(TLS_CERT, &due_but_foreign);

    let outcome = m.created();

    expect_statuses(&outcome, ["Unchanged", "Operator", "Unchanged"]);
    assert_eq!(m.read(TLS_CERT), due_but_foreign);
}

fn planted_ca(key: &KeyPair) -> String {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Someone else's CA");
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(key).expect("signed").pem()
}

#[test]
fn missing_certificates_are_issued_from_existing_keys() {
    let m = Mount::new();
    m.created();
    let keys: Vec<String> = [CA_KEY, TLS_KEY, UI_KEY]
        .iter()
        .map(|k| m.read(k))
        .collect();
    for cert in [CA_CERT, TLS_CERT, TLS_PEM, UI_CERT] {
        fs::remove_file(m.at(cert)).expect("removed");
    }

    let outcome = m.created();

    expect_statuses(&outcome, ["Created", "Created", "Created"]);
    let after: Vec<String> = [CA_KEY, TLS_KEY, UI_KEY]
        .iter()
        .map(|k| m.read(k))
        .collect();
    assert_eq!(keys, after, "keys are never regenerated");
    openssl_ok(&[
        "verify",
        "-CAfile",
        path_str(&m.at(CA_CERT)),
        path_str(&m.at(TLS_CERT)),
    ]);
}

#[test]
fn a_certificate_whose_key_is_missing_fails_naming_the_key_and_writes_nothing() {
    let m = Mount::new();
    m.created();
    fs::remove_file(m.at(TLS_KEY)).expect("removed");
    fs::remove_file(m.at(UI_CERT)).expect("removed");
    let listing = |m: &Mount| -> Vec<PathBuf> {
        ALL.iter().map(|p| m.at(p)).filter(|p| p.exists()).collect()
    };
    let before = listing(&m);

    let err = m.reconcile().expect_err("must fail");

    let reason = err.to_string();
    assert!(
        reason.starts_with(&format!(
            "{TLS_KEY}: missing while its certificate {TLS_CERT} exists"
        )),
        "{reason}"
    );
    assert!(matches!(err, Failure::Certs(CertsError::KeyMissing { .. })));
    assert_eq!(
        listing(&m),
        before,
        "the UI certificate was not issued either"
    );
}

#[test]
fn an_authority_without_its_key_is_fine_until_a_leaf_must_be_signed() {
    let m = Mount::new();
    m.created();
    // The operator keeps the CA key offline.
    fs::remove_file(m.at(CA_KEY)).expect("removed");

    let outcome = m.created();
    expect_statuses(&outcome, ["Operator", "Unchanged", "Unchanged"]);
    assert!(
        !m.at(CA_KEY).exists(),
        "no key is made for an existing certificate"
    );

    fs::remove_file(m.at(TLS_CERT)).expect("removed");
    let reason = m.reconcile().expect_err("nothing can sign").to_string();
    assert!(
        reason.starts_with(&format!(
            "{CA_KEY}: missing, so InternalTls cannot be signed by authority InternalCa"
        )),
        "{reason}"
    );
    assert!(!m.at(TLS_CERT).exists());
}

#[test]
fn a_symlinked_key_is_refused_before_anything_is_written() {
    let m = Mount::new();
    let outside = tempfile::NamedTempFile::new().expect("temp");
    fs::create_dir_all(m.at("data/ssl_certs")).expect("dir");
    std::os::unix::fs::symlink(outside.path(), m.at(UI_KEY)).expect("symlink");

    let reason = m.reconcile().expect_err("refused").to_string();

    assert_eq!(
        reason,
        format!("{UI_KEY}: is a symbolic link; refusing to follow it")
    );
    assert!(!m.at("ca").exists(), "nothing was written");
    assert_eq!(fs::read(outside.path()).expect("readable"), b"");
}

// ---------------------------------------------------------------- TLS handshakes

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Ends the child (started by this test) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` with `cert`/`key`, requiring a client certificate from `client_ca`.
fn server(m: &Mount, cert: &str, key: &str, client_ca: &str, port: u16) -> Server {
    let child = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .args(["-cert", path_str(&m.at(cert)), "-key", path_str(&m.at(key))])
        .args([
            "-CAfile",
            path_str(&m.at(client_ca)),
            "-Verify",
            "1",
            "-verify_return_error",
        ])
        .args([
            "-cipher",
            CE_TLS12_CIPHERS,
            "-ciphersuites",
            CE_TLS13_SUITES,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_server starts");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "s_server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// `openssl s_client` against 127.0.0.1:`port`, verifying the server against `ca_file`
/// (errors are fatal) and presenting `client` (cert, key); `extra` picks the protocol.
/// Bounded to 20 seconds. Returns (success, output).
fn client(ca_file: &Path, client: (&Path, &Path), port: u16, extra: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-CAfile", path_str(ca_file), "-verify_return_error"])
        .args(["-verify_hostname", "localhost", "-servername", "localhost"])
        .args(["-cert", path_str(client.0), "-key", path_str(client.1)])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("s_client starts");
    // A line for the server, then end of input: s_client closes after the handshake.
    let _ = child.stdin.take().expect("stdin").write_all(b"ping\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = out.status.success() && text.contains("Verify return code: 0 (ok)");
    (ok, text)
}

#[test]
fn tls_handshakes_succeed_with_the_issued_files_and_ces_ciphers() {
    let m = Mount::new();
    m.created();
    let port = free_port();
    let _server = server(&m, TLS_CERT, TLS_KEY, CA_CERT, port);
    let ca = m.at(CA_CERT);
    let me = (m.at(TLS_CERT), m.at(TLS_KEY));
    let me = (me.0.as_path(), me.1.as_path());

    let (ok, out) = client(
        &ca,
        me,
        port,
        &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"],
    );
    assert!(ok, "TLS 1.3: {out}");
    assert!(out.contains("TLSv1.3"), "{out}");

    let (ok, out) = client(
        &ca,
        me,
        port,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    );
    assert!(ok, "TLS 1.2: {out}");
    assert!(out.contains("ECDHE-ECDSA-AES128-GCM-SHA256"), "{out}");

    // The MongoDB form: certificate and key from the one combined file.
    let pem = m.at(TLS_PEM);
    let (ok, out) = client(&ca, (&pem, &pem), port, &["-tls1_3"]);
    assert!(
        ok,
        "combined PEM as the client's certificate and key: {out}"
    );
}

#[test]
fn the_ui_certificate_serves_https_for_localhost() {
    let m = Mount::new();
    m.created();
    let port = free_port();
    let _server = server(&m, UI_CERT, UI_KEY, CA_CERT, port);
    let client_pair = (m.at(TLS_CERT), m.at(TLS_KEY));

    let (ok, out) = client(
        &m.at(UI_CERT),
        (&client_pair.0, &client_pair.1),
        port,
        &["-verify_ip", "127.0.0.1"],
    );

    assert!(ok, "{out}");
}

/// The checks above can fail: a client trusting another CA refuses the server, and
/// `openssl verify` refuses the chain.
#[test]
fn verification_against_another_authority_fails() {
    let m = Mount::new();
    m.created();
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = other.path().join("other-ca.crt");
    fs::write(&other_ca, planted_ca(&KeyPair::generate().expect("key"))).expect("written");

    let out = openssl(&[
        "verify",
        "-CAfile",
        path_str(&other_ca),
        path_str(&m.at(TLS_CERT)),
    ]);
    assert!(!out.status.success(), "verified against an unrelated CA");

    let port = free_port();
    let _server = server(&m, TLS_CERT, TLS_KEY, CA_CERT, port);
    let (ok, out) = client(&other_ca, (&m.at(TLS_CERT), &m.at(TLS_KEY)), port, &[]);
    assert!(!ok, "handshake accepted a server from another CA: {out}");
    assert!(
        out.contains("verify error") || out.contains("unable to get local issuer"),
        "{out}"
    );

    // A name not in the certificate is refused too.
    let (ok, out) = client(
        &m.at(CA_CERT),
        (&m.at(TLS_CERT), &m.at(TLS_KEY)),
        port,
        &["-verify_hostname", "ce.example.com"],
    );
    assert!(!ok, "{out}");
}

// ---------------------------------------------------------------- secrets

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT_LOGS: Once = Once::new();

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every test's log lines, at every level, in JSON as the Lambda writes them.
fn capture_logs() {
    INIT_LOGS.call_once(|| {
        lambda_runtime::tracing::subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| LogWriter)
            .init();
    });
}

fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

#[test]
fn keys_never_reach_logs_debug_output_or_errors() {
    let m = Mount::new();
    let outcome = m.created();
    let keys: Vec<String> = [CA_KEY, TLS_KEY, UI_KEY]
        .iter()
        .map(|k| m.read(k))
        .collect();
    // The base64 body of each key, which would betray it even without its PEM header.
    let bodies: Vec<String> = keys
        .iter()
        .map(|k| k.lines().filter(|l| !l.starts_with("-----")).collect())
        .collect();

    let observed = certs::observe(
        &m.path,
        &TreeSpec::from_properties(&properties())
            .expect("valid")
            .certificates,
    )
    .expect("observed");
    let spec = TreeSpec::from_properties(&properties()).expect("valid");
    let issued =
        certs::issue(&spec.certificates, &observed, OffsetDateTime::now_utc()).expect("issued");
    let debug = format!("{observed:?} {issued:?} {outcome:?}");
    let logs = captured_logs();
    assert!(
        logs.contains("InternalTls"),
        "the logs were not captured: {logs}"
    );
    for (what, text) in [("logs", &logs), ("Debug output", &debug)] {
        assert!(!text.contains("PRIVATE KEY"), "{what} hold a key: {text}");
        for body in &bodies {
            let sample = &body[..40];
            assert!(!text.contains(sample), "{what} hold key material");
        }
    }
    assert!(issued
        .keys
        .iter()
        .all(|f| format!("{f:?}").contains("bytes>")));
}

// ---------------------------------------------------------------- the planner alone

fn rel(path: &str) -> RelPath {
    TreeSpec::from_properties(&json!({ "Files": [{ "Path": path, "Content": "" }] }))
        .expect("valid")
        .files[0]
        .path
        .clone()
}

fn planned(
    name: &str,
    key: KeyAction,
    certificate: CertAction,
    combined: Option<CombinedAction>,
) -> Planned {
    Planned {
        name: name.to_owned(),
        key,
        certificate,
        combined,
    }
}

/// The bytes a first run wrote, by declared path.
fn first_run() -> BTreeMap<&'static str, Vec<u8>> {
    let m = Mount::new();
    m.created();
    ALL.iter()
        .map(|path| (*path, fs::read(m.at(path)).expect("readable")))
        .collect()
}

fn observed(files: &BTreeMap<&'static str, Vec<u8>>) -> Observed {
    let mut observed = Observed::default();
    for (path, bytes) in files {
        observed.insert(rel(path), bytes.clone());
    }
    observed
}

fn spec() -> ce_efs_tree::spec::CertsSpec {
    TreeSpec::from_properties(&properties())
        .expect("valid")
        .certificates
}

#[test]
fn plan_for_an_empty_mount_generates_everything() {
    let plan = certs::plan(&spec(), &Observed::default(), OffsetDateTime::now_utc()).expect("plan");
    assert_eq!(
        plan,
        Plan {
            certificates: vec![
                planned("InternalCa", KeyAction::Generate, CertAction::Issue, None),
                planned(
                    "InternalTls",
                    KeyAction::Generate,
                    CertAction::Issue,
                    Some(CombinedAction::Track)
                ),
                planned("Ui", KeyAction::Generate, CertAction::Issue, None),
            ]
        }
    );
}

#[test]
fn plan_renews_by_the_clock_alone() {
    let now = OffsetDateTime::now_utc();
    let files = observed(&first_run());
    let keep = certs::plan(&spec(), &files, now).expect("plan");
    assert!(keep
        .certificates
        .iter()
        .all(|p| p.key == KeyAction::Keep && matches!(p.certificate, CertAction::Keep { .. })));

    // 3630 days on, the leaves (3650 days) are within 30 days of expiry; the CA (7300) is not.
    let due = certs::plan(&spec(), &files, now + time::Duration::days(3630)).expect("plan");
    let actions: Vec<CertAction> = due.certificates.iter().map(|p| p.certificate).collect();
    assert!(matches!(actions[0], CertAction::Keep { .. }), "{actions:?}");
    assert_eq!(actions[1..], [CertAction::Renew, CertAction::Renew]);
    assert!(due.certificates.iter().all(|p| p.key == KeyAction::Keep));

    // Two days before the window opens nothing is due.
    let before = certs::plan(&spec(), &files, now + time::Duration::days(3618)).expect("plan");
    assert!(before
        .certificates
        .iter()
        .all(|p| matches!(p.certificate, CertAction::Keep { .. })));
}

#[test]
fn plan_treats_certificates_of_a_replaced_authority_key_as_the_operators() {
    let now = OffsetDateTime::now_utc();
    let mut files = first_run();
    // The CA key replaced: neither the CA certificate nor the leaf verify against it.
    let other = KeyPair::generate()
        .expect("key")
        .serialize_pem()
        .into_bytes();
    files.insert(CA_KEY, other);
    let plan = certs::plan(&spec(), &observed(&files), now).expect("plan");
    let operator: Vec<(KeyAction, bool)> = plan
        .certificates
        .iter()
        .map(|p| (p.key, matches!(p.certificate, CertAction::Operator { .. })))
        .collect();
    assert_eq!(
        operator,
        [
            (KeyAction::Keep, true),
            (KeyAction::Keep, true),
            (KeyAction::Keep, false)
        ]
    );
    // The leaf still matches its own key, so its combined file may be assembled if missing.
    assert_eq!(
        plan.certificates[1].combined,
        Some(CombinedAction::AssembleIfMissing)
    );

    // That authority cannot sign a leaf that is missing.
    files.remove(TLS_CERT);
    let err = certs::plan(&spec(), &observed(&files), now).expect_err("cannot sign");
    assert_eq!(
        err.to_string(),
        format!(
            "{CA_CERT}: is not a certificate for authority InternalCa's key {CA_KEY}, so \
             InternalTls cannot be signed with it"
        )
    );
}

#[test]
fn plan_refuses_a_certificate_without_its_key() {
    let mut files = first_run();
    files.remove(UI_KEY);
    let err =
        certs::plan(&spec(), &observed(&files), OffsetDateTime::now_utc()).expect_err("no key");
    assert_eq!(
        err,
        CertsError::KeyMissing {
            key: UI_KEY.into(),
            certificate: UI_CERT.into()
        }
    );
}

#[test]
fn plan_refuses_keys_it_cannot_use_only_when_it_needs_them() {
    let now = OffsetDateTime::now_utc();
    let mut observed = Observed::default();
    let garbage = b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n";
    observed.insert(rel(UI_KEY), garbage.to_vec());
    let err = certs::plan(&spec(), &observed, now).expect_err("unusable");
    assert_eq!(
        err,
        CertsError::UnusableKey {
            key: UI_KEY.into(),
            purpose: "issue certificate Ui".into()
        }
    );
    // With a certificate beside it, the pair is the operator's.
    observed.insert(rel(UI_CERT), b"an operator's certificate".to_vec());
    let plan = certs::plan(&spec(), &observed, now).expect("plan");
    assert_eq!(
        plan.certificates[2].certificate,
        CertAction::Operator { not_after: None }
    );
}
