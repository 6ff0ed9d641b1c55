//! TLS material for Cloud Exchange: a CA, the certificate MongoDB, RabbitMQ and core use
//! between themselves, and the UI's self-signed certificate, declared under
//! `Certificates` ([`CertsSpec`]) and written into the tree like seed files.
//!
//! CE 6.1 runs RabbitMQ on TLS only and MongoDB with `--tlsMode preferTLS`; its `setup`
//! script makes the same set with `openssl` (a CA, a server certificate for `localhost`,
//! `mongodb-primary`, `rabbitmq-stats` and 127.0.0.1 with serverAuth and clientAuth, the
//! certificate and key concatenated for MongoDB's `tlsCertificateKeyFile`, and a
//! self-signed serverAuth certificate for the UI). Here the function makes them, because
//! a Fargate task has no setup step and the files must exist before the containers start.
//!
//! **Key type: ECDSA P-256** (PKCS#8 PEM, unencrypted like `openssl -nodes`), signatures
//! ECDSA with SHA-256. CE's own TLS settings accept it: `data/rabbitmq/custom.conf` offers
//! TLS 1.3 (whose suites do not depend on the key type) and, for TLS 1.2,
//! `ECDHE-ECDSA-AES128-GCM-SHA256`, `ECDHE-ECDSA-AES256-GCM-SHA384` and
//! `ECDHE-ECDSA-CHACHA20-POLY1305`; MongoDB's `opensslCipherConfig` in `docker-compose.yml`
//! lists the same three ECDSA suites and its `opensslCipherSuiteConfig` the TLS 1.3 ones.
//! P-256 keys are generated in microseconds (RSA-4096, the reference's choice, takes
//! seconds of a 128 MB Lambda's CPU) and ring, already linked for HTTPS, does it all.
//!
//! **Nothing is ever regenerated.** For each declared certificate the function looks at
//! what is on disk ([`observe`], read-only and symlink-safe), decides ([`plan`], a pure
//! function of the declaration, the files' bytes and the time), then issues what is
//! needed ([`issue`]) and hands the results to the tree as ordinary file entries:
//! - a key file that exists is never replaced; a missing one is generated only together
//!   with the certificate it belongs to;
//! - a certificate of ours (its public key is its key file's, and it is signed by its
//!   authority's key, or by its own key for `Issuer: Self` and for authorities) is kept
//!   until it expires within `RenewBeforeDays`, then re-issued with the same key by the
//!   same authority key (a renewed authority keeps its subject and key identifier, so
//!   certificates it issued before keep verifying);
//! - any other file at a certificate's path (someone else's certificate, or one that does
//!   not parse) is the operator's: never overwritten, reported as `Operator`;
//! - a certificate without its key fails the request, naming the key: a new key could not
//!   match it. So does a leaf that must be signed while its authority's key is missing or
//!   does not belong to the authority's certificate.
//!
//! Changing `DnsNames` or a validity later does not re-issue a certificate that is not
//! due; delete the certificate file (its key stays) and the next Create/Update issues a
//! new one with the declared names.
//!
//! Keys are written before certificates (two rounds of the tree), so a run cut short
//! leaves keys without certificates, which the next run completes, never a certificate
//! whose key is missing. Key material is held in [`Secret`] (zeroed on drop, redacted in
//! `Debug`); file entries redact content in `Debug`; nothing here logs content.

use crate::spec::{
    AuthoritySpec, CertsSpec, ExtendedKeyUsage, FileAt, FileSpec, Issuer, LeafSpec, RelPath,
};
use crate::tree::{self, TreeError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyIdMethod,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use time::{Duration, OffsetDateTime, UtcOffset};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;
use zeroize::Zeroizing;

/// Largest certificate or key file read. Ours are under 1 KiB; a larger file at a
/// certificate's path is not ours, and a larger key is not one we can use.
pub const MAX_READ_BYTES: u64 = 64 * 1024;
/// New certificates start this long before "now", for clocks slightly behind.
const BACKDATE: Duration = Duration::minutes(5);

/// Bytes that may be a private key: zeroed on drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// The declared certificate, key and combined files that exist, with their bytes.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    files: HashMap<RelPath, Secret>,
}

impl Observed {
    /// Records that `path` exists with `bytes` (tests plant files this way).
    pub fn insert(&mut self, path: RelPath, bytes: Vec<u8>) {
        self.files.insert(path, Secret::new(bytes));
    }

    fn get(&self, at: &FileAt) -> Option<&Secret> {
        self.files.get(&at.path)
    }
}

/// Reads every file `spec` declares, without following a symlink below `root`. A
/// symlink, a non-regular file or a hard link there fails like it does in the tree.
pub fn observe(root: &Path, spec: &CertsSpec) -> Result<Observed, TreeError> {
    let mut observed = Observed::default();
    for at in spec.files().into_iter().map(|(_, at)| at) {
        if let Some(bytes) = tree::read_file(root, &at.path, MAX_READ_BYTES + 1)? {
            observed.insert(at.path.clone(), bytes);
        }
    }
    Ok(observed)
}

/// Why the certificates cannot be brought to the declared state. Paths are relative to
/// the mount, as declared.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertsError {
    #[error(
        "{key}: missing while its certificate {certificate} exists; refusing to generate a key \
         that cannot match it (restore the key, or remove the certificate to have both made anew)"
    )]
    KeyMissing { key: String, certificate: String },
    #[error(
        "{key}: missing, so {leaf} cannot be signed by authority {authority} (restore the \
         authority's key; its certificate {certificate} is left as it is)"
    )]
    AuthorityKeyMissing {
        key: String,
        authority: String,
        certificate: String,
        leaf: String,
    },
    #[error(
        "{key}: not an unencrypted PKCS#8 PEM private key (ECDSA, Ed25519 or RSA) that this \
         function can use, and it is needed to {purpose}"
    )]
    UnusableKey { key: String, purpose: String },
    #[error(
        "{certificate}: is not a certificate for authority {authority}'s key {key}, so {leaf} \
         cannot be signed with it"
    )]
    AuthorityMismatch {
        certificate: String,
        authority: String,
        key: String,
        leaf: String,
    },
    #[error("{certificate}: cannot issue certificate {name}: {detail}")]
    Issue {
        name: String,
        certificate: String,
        detail: String,
    },
}

/// What a certificate's file holds after this run; becomes `<Name>Status` in `Data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Issued where there was none.
    Created,
    /// Ours, due, re-issued with the same key.
    Renewed,
    /// Ours and not due.
    Unchanged,
    /// Not ours (or not verifiable as ours): left alone.
    Operator,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "Created",
            Status::Renewed => "Renewed",
            Status::Unchanged => "Unchanged",
            Status::Operator => "Operator",
        }
    }
}

/// What to do with a certificate's key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// Missing: generate one (its certificate is missing too).
    Generate,
    /// Present: keep it as it is.
    Keep,
    /// Missing, and its certificate is there: leave both (allowed for an authority that
    /// signs nothing in this run; the operator may keep a CA key offline).
    Absent,
}

/// What to do with a certificate file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertAction {
    /// Missing: issue one.
    Issue,
    /// Ours and expiring within the renewal window: issue anew with the same key.
    Renew,
    /// Ours and not due (`not_after` as on disk).
    Keep { not_after: OffsetDateTime },
    /// Someone else's, or not readable as a certificate: leave it alone.
    Operator { not_after: Option<OffsetDateTime> },
}

impl CertAction {
    pub fn status(self) -> Status {
        match self {
            CertAction::Issue => Status::Created,
            CertAction::Renew => Status::Renewed,
            CertAction::Keep { .. } => Status::Unchanged,
            CertAction::Operator { .. } => Status::Operator,
        }
    }

    fn signs(self) -> bool {
        matches!(self, CertAction::Issue | CertAction::Renew)
    }
}

/// What to do with a leaf's `CombinedPem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CombinedAction {
    /// Keep it equal to the certificate followed by the key (ours: rewritten when it
    /// differs, e.g. after a renewal).
    Track,
    /// The operator's certificate matches the key: assemble it only if missing.
    AssembleIfMissing,
    /// The operator's certificate does not match the key: leave it (or its absence) alone.
    Leave,
}

/// The decision for one declared certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    pub key: KeyAction,
    pub certificate: CertAction,
    /// `None` when no `CombinedPem` is declared.
    pub combined: Option<CombinedAction>,
}

/// Decisions for every declared certificate: authorities first, then leaves, each in
/// declared order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub certificates: Vec<Planned>,
}

/// What a key file holds.
enum KeyState {
    Missing,
    Usable(Box<KeyPair>, Secret),
    Unusable,
}

fn key_state(observed: &Observed, at: &FileAt) -> KeyState {
    let Some(secret) = observed.get(at) else {
        return KeyState::Missing;
    };
    let parsed = (secret.as_bytes().len() as u64 <= MAX_READ_BYTES)
        .then(|| secret.as_text())
        .flatten()
        .and_then(|text| KeyPair::from_pem(text).ok());
    match parsed {
        Some(key) => KeyState::Usable(Box::new(key), secret.clone()),
        None => KeyState::Unusable,
    }
}

/// A certificate file's DER: `None` if missing, `Some(None)` if it is not a PEM
/// certificate (or too large to be ours).
fn cert_der(observed: &Observed, at: &FileAt) -> Option<Option<Vec<u8>>> {
    let secret = observed.get(at)?;
    if secret.as_bytes().len() as u64 > MAX_READ_BYTES {
        return Some(None);
    }
    Some(pem_to_der(secret.as_bytes()))
}

/// The parsed form of [`cert_der`]'s answer.
fn parse_cert(der: &Option<Option<Vec<u8>>>) -> Option<Option<X509Certificate<'_>>> {
    der.as_ref().map(|der| {
        der.as_deref()
            .and_then(|der| X509Certificate::from_der(der).ok())
            .map(|(_, cert)| cert)
    })
}

fn not_after(cert: &X509Certificate) -> OffsetDateTime {
    cert.validity().not_after.to_datetime()
}

fn matches_key(cert: &X509Certificate, key: &KeyPair) -> bool {
    cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}

/// Whether `cert` is signed by the key whose SubjectPublicKeyInfo DER is `signer`.
fn signed_by(cert: &X509Certificate, signer: &[u8]) -> bool {
    match SubjectPublicKeyInfo::from_der(signer) {
        Ok((_, spki)) => cert.verify_signature(Some(&spki)).is_ok(),
        Err(_) => false,
    }
}

/// Due for renewal: it expires within `renew_before_days` of `now`.
fn due(not_after: OffsetDateTime, now: OffsetDateTime, renew_before_days: u32) -> bool {
    not_after <= now + Duration::days(i64::from(renew_before_days))
}

/// Whether an authority can sign leaves in this run, and with which public key its
/// existing leaves are verified.
struct AuthorityInfo {
    /// SubjectPublicKeyInfo DER that signatures of its leaves are checked against.
    verifying_key: Option<Vec<u8>>,
    /// `Ok` if a leaf may be signed; else the error naming what is missing.
    signer: Result<(), SignerProblem>,
}

#[derive(Clone, Copy)]
enum SignerProblem {
    KeyMissing,
    KeyUnusable,
    CertificateMismatch,
}

/// Decides, for every declared certificate, what to do, from what is on disk and the
/// time alone: no I/O, no randomness.
pub fn plan(
    spec: &CertsSpec,
    observed: &Observed,
    now: OffsetDateTime,
) -> Result<Plan, CertsError> {
    let renew = spec.renew_before_days;
    let mut certificates = Vec::new();
    let mut authorities: HashMap<&str, (&AuthoritySpec, AuthorityInfo)> = HashMap::new();

    for authority in &spec.authorities {
        let der = cert_der(observed, &authority.certificate);
        let cert = parse_cert(&der);
        let key = key_state(observed, &authority.key);
        let (planned, info) = plan_authority(authority, &key, cert.as_ref(), now, renew)?;
        certificates.push(planned);
        authorities.insert(&authority.name, (authority, info));
    }

    for leaf in &spec.leaves {
        let der = cert_der(observed, &leaf.certificate);
        let cert = parse_cert(&der);
        let key = key_state(observed, &leaf.key);
        let signer =
            match &leaf.issuer {
                Issuer::SelfSigned => None,
                Issuer::Authority(name) => Some(authorities.get(name.as_str()).ok_or_else(
                    || CertsError::Issue {
                        name: leaf.name.clone(),
                        certificate: leaf.certificate.path.to_string(),
                        detail: format!("its issuer {name} is not a declared authority"),
                    },
                )?),
            };
        let planned = plan_leaf(
            leaf,
            &key,
            cert.as_ref(),
            signer.map(|(_, info)| info),
            now,
            renew,
        )?;
        if planned.certificate.signs() {
            if let Some((authority, info)) = signer {
                check_signer(authority, info, leaf)?;
            }
        }
        certificates.push(planned);
    }
    Ok(Plan { certificates })
}

fn plan_authority(
    authority: &AuthoritySpec,
    key: &KeyState,
    cert: Option<&Option<X509Certificate>>,
    now: OffsetDateTime,
    renew: u32,
) -> Result<(Planned, AuthorityInfo), CertsError> {
    let planned = |key, certificate| Planned {
        name: authority.name.clone(),
        key,
        certificate,
        combined: None,
    };
    Ok(match (key, cert) {
        (KeyState::Missing, None) => {
            // Both are made now; nothing signed by an earlier key can verify.
            let info = AuthorityInfo {
                verifying_key: None,
                signer: Ok(()),
            };
            (planned(KeyAction::Generate, CertAction::Issue), info)
        }
        (KeyState::Missing, Some(cert)) => {
            let info = AuthorityInfo {
                verifying_key: cert.as_ref().map(|c| c.public_key().raw.to_vec()),
                signer: Err(SignerProblem::KeyMissing),
            };
            let not_after = cert.as_ref().map(|c| not_after(c));
            (
                planned(KeyAction::Absent, CertAction::Operator { not_after }),
                info,
            )
        }
        (KeyState::Unusable, None) => {
            return Err(CertsError::UnusableKey {
                key: authority.key.path.to_string(),
                purpose: format!("issue authority {}'s certificate", authority.name),
            })
        }
        (KeyState::Unusable, Some(cert)) => {
            let info = AuthorityInfo {
                verifying_key: cert.as_ref().map(|c| c.public_key().raw.to_vec()),
                signer: Err(SignerProblem::KeyUnusable),
            };
            let not_after = cert.as_ref().map(|c| not_after(c));
            (
                planned(KeyAction::Keep, CertAction::Operator { not_after }),
                info,
            )
        }
        (KeyState::Usable(key, _), cert) => {
            let spki = key.subject_public_key_info();
            let action = match cert {
                None => CertAction::Issue,
                Some(None) => CertAction::Operator { not_after: None },
                Some(Some(c)) => {
                    let ours = matches_key(c, key) && signed_by(c, &spki);
                    let expiry = not_after(c);
                    match (ours, due(expiry, now, renew)) {
                        (true, true) => CertAction::Renew,
                        (true, false) => CertAction::Keep { not_after: expiry },
                        (false, _) => CertAction::Operator {
                            not_after: Some(expiry),
                        },
                    }
                }
            };
            // An operator's certificate for this very key (an intermediate CA, say) can
            // still sign; one for another key cannot.
            let signer = match (action, cert) {
                (CertAction::Operator { .. }, Some(Some(c))) if matches_key(c, key) => Ok(()),
                (CertAction::Operator { .. }, _) => Err(SignerProblem::CertificateMismatch),
                _ => Ok(()),
            };
            let info = AuthorityInfo {
                verifying_key: Some(spki),
                signer,
            };
            (planned(KeyAction::Keep, action), info)
        }
    })
}

fn plan_leaf(
    leaf: &LeafSpec,
    key: &KeyState,
    cert: Option<&Option<X509Certificate>>,
    authority: Option<&AuthorityInfo>,
    now: OffsetDateTime,
    renew: u32,
) -> Result<Planned, CertsError> {
    let (key_action, action, matching) = match (key, cert) {
        (KeyState::Missing, None) => (KeyAction::Generate, CertAction::Issue, true),
        (KeyState::Missing, Some(_)) => {
            return Err(CertsError::KeyMissing {
                key: leaf.key.path.to_string(),
                certificate: leaf.certificate.path.to_string(),
            })
        }
        (KeyState::Unusable, None) => {
            return Err(CertsError::UnusableKey {
                key: leaf.key.path.to_string(),
                purpose: format!("issue certificate {}", leaf.name),
            })
        }
        (KeyState::Unusable, Some(cert)) => {
            let not_after = cert.as_ref().map(|c| not_after(c));
            (KeyAction::Keep, CertAction::Operator { not_after }, false)
        }
        (KeyState::Usable(_, _), None) => (KeyAction::Keep, CertAction::Issue, true),
        (KeyState::Usable(_, _), Some(None)) => (
            KeyAction::Keep,
            CertAction::Operator { not_after: None },
            false,
        ),
        (KeyState::Usable(key, _), Some(Some(c))) => {
            let matching = matches_key(c, key);
            let verifying_key = match authority {
                None => Some(key.subject_public_key_info()),
                Some(info) => info.verifying_key.clone(),
            };
            let ours = matching && verifying_key.is_some_and(|spki| signed_by(c, &spki));
            let expiry = not_after(c);
            let action = match (ours, due(expiry, now, renew)) {
                (true, true) => CertAction::Renew,
                (true, false) => CertAction::Keep { not_after: expiry },
                (false, _) => CertAction::Operator {
                    not_after: Some(expiry),
                },
            };
            (KeyAction::Keep, action, matching)
        }
    };
    let combined = leaf.combined_pem.as_ref().map(|_| match action {
        CertAction::Operator { .. } if matching => CombinedAction::AssembleIfMissing,
        CertAction::Operator { .. } => CombinedAction::Leave,
        _ => CombinedAction::Track,
    });
    Ok(Planned {
        name: leaf.name.clone(),
        key: key_action,
        certificate: action,
        combined,
    })
}

fn check_signer(
    authority: &AuthoritySpec,
    info: &AuthorityInfo,
    leaf: &LeafSpec,
) -> Result<(), CertsError> {
    let Err(problem) = info.signer else {
        return Ok(());
    };
    let (key, certificate) = (
        authority.key.path.to_string(),
        authority.certificate.path.to_string(),
    );
    let (authority, leaf) = (authority.name.clone(), leaf.name.clone());
    Err(match problem {
        SignerProblem::KeyMissing => CertsError::AuthorityKeyMissing {
            key,
            authority,
            certificate,
            leaf,
        },
        SignerProblem::KeyUnusable => CertsError::UnusableKey {
            key,
            purpose: format!("sign certificate {leaf} as authority {authority}"),
        },
        SignerProblem::CertificateMismatch => CertsError::AuthorityMismatch {
            certificate,
            authority,
            key,
            leaf,
        },
    })
}

/// One certificate's outcome, for `Data` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertReport {
    pub name: String,
    pub status: Status,
    /// `None` only for an operator's file that is not a readable certificate.
    pub not_after: Option<OffsetDateTime>,
}

/// The generated material as file entries for the tree, in two rounds, and the report.
#[derive(Debug, Default)]
pub struct Issued {
    /// Key files: written (when missing) before any certificate.
    pub keys: Vec<FileSpec>,
    /// Certificates and combined files.
    pub certificates: Vec<FileSpec>,
    pub report: Vec<CertReport>,
}

/// The final state of an authority in this run: what its leaves are signed with.
struct Authority {
    key: Option<KeyPair>,
    certificate_der: Option<Vec<u8>>,
}

/// Plans, then issues what the plan calls for: new keys, new and renewed certificates,
/// and the file entries (existing files included, so their owner and mode are kept as
/// declared). Random serial numbers; no disk I/O.
pub fn issue(
    spec: &CertsSpec,
    observed: &Observed,
    now: OffsetDateTime,
) -> Result<Issued, CertsError> {
    let plan = plan(spec, observed, now)?;
    let mut issued = Issued::default();
    let mut authorities: HashMap<&str, Authority> = HashMap::new();
    let mut planned = plan.certificates.iter();

    for (spec_entry, step) in spec.authorities.iter().zip(planned.by_ref()) {
        let key = material_key(observed, &spec_entry.name, &spec_entry.key, step.key)?;
        let existing = observed.get(&spec_entry.certificate);
        let (pem, not_after) = match step.certificate {
            CertAction::Issue | CertAction::Renew => {
                let key = key
                    .as_ref()
                    .map(|(k, _)| k)
                    .ok_or_else(|| internal(&spec_entry.name, &spec_entry.certificate, "no key"))?;
                let (cert_pem, not_after) = self_sign_authority(spec_entry, key, existing, now)?;
                (Some(cert_pem), Some(not_after))
            }
            CertAction::Keep { not_after } => (None, Some(not_after)),
            CertAction::Operator { not_after } => (None, not_after),
        };
        let certificate_der = match &pem {
            Some(pem) => pem_to_der(pem.as_bytes()),
            None => existing.and_then(|s| pem_to_der(s.as_bytes())),
        };
        issued.push_key(&spec_entry.key, key.as_ref().map(|(_, s)| s));
        issued.push_certificate(
            &spec_entry.certificate,
            step.certificate,
            pem.as_deref(),
            existing,
        );
        issued.report.push(CertReport {
            name: spec_entry.name.clone(),
            status: step.certificate.status(),
            not_after,
        });
        authorities.insert(
            &spec_entry.name,
            Authority {
                key: key.map(|(k, _)| k),
                certificate_der,
            },
        );
    }

    for (leaf, step) in spec.leaves.iter().zip(planned) {
        let key = material_key(observed, &leaf.name, &leaf.key, step.key)?;
        let existing = observed.get(&leaf.certificate);
        let (pem, not_after) = match step.certificate {
            CertAction::Issue | CertAction::Renew => {
                let (key, _) = key
                    .as_ref()
                    .ok_or_else(|| internal(&leaf.name, &leaf.certificate, "no key"))?;
                let (cert_pem, not_after) = sign_leaf(leaf, key, &authorities, now)?;
                (Some(cert_pem), Some(not_after))
            }
            CertAction::Keep { not_after } => (None, Some(not_after)),
            CertAction::Operator { not_after } => (None, not_after),
        };
        issued.push_key(&leaf.key, key.as_ref().map(|(_, s)| s));
        issued.push_certificate(
            &leaf.certificate,
            step.certificate,
            pem.as_deref(),
            existing,
        );
        if let (Some(at), Some(action), Some((_, key_secret))) =
            (&leaf.combined_pem, step.combined, key.as_ref())
        {
            let cert_text = pem
                .as_deref()
                .or_else(|| existing.and_then(Secret::as_text));
            if let (Some(cert_text), Some(key_text)) = (cert_text, key_secret.as_text()) {
                issued.push_combined(at, action, cert_text, key_text);
            }
        }
        issued.report.push(CertReport {
            name: leaf.name.clone(),
            status: step.certificate.status(),
            not_after,
        });
    }
    for report in &issued.report {
        tracing::info!(
            certificate = %report.name,
            status = report.status.as_str(),
            not_after = %rfc3339(report.not_after),
            "certificate planned"
        );
    }
    Ok(issued)
}

impl Issued {
    /// The key file as an entry: a new key is written only if still missing; an existing
    /// one is listed (with its bytes, never rewritten) so owner and mode are reconciled.
    fn push_key(&mut self, at: &FileAt, key: Option<&Secret>) {
        if let Some(text) = key.and_then(Secret::as_text) {
            self.keys.push(file_entry(at, text, false));
        }
    }

    fn push_certificate(
        &mut self,
        at: &FileAt,
        action: CertAction,
        issued: Option<&str>,
        existing: Option<&Secret>,
    ) {
        let entry = match (action, issued) {
            (CertAction::Issue, Some(pem)) => file_entry(at, pem, false),
            (CertAction::Renew, Some(pem)) => file_entry(at, pem, true),
            _ => match existing.and_then(Secret::as_text) {
                Some(text) => file_entry(at, text, false),
                // Not text (DER, say): the operator's, left entirely alone.
                None => return,
            },
        };
        self.certificates.push(entry);
    }

    fn push_combined(&mut self, at: &FileAt, action: CombinedAction, cert: &str, key: &str) {
        let overwrite = match action {
            CombinedAction::Track => true,
            CombinedAction::AssembleIfMissing => false,
            CombinedAction::Leave => return,
        };
        let mut content = String::with_capacity(cert.len() + key.len() + 1);
        content.push_str(cert);
        if !cert.ends_with('\n') {
            content.push('\n');
        }
        content.push_str(key);
        self.certificates.push(file_entry(at, &content, overwrite));
    }
}

fn file_entry(at: &FileAt, content: &str, overwrite: bool) -> FileSpec {
    FileSpec {
        path: at.path.clone(),
        content: content.to_owned(),
        owner: at.owner,
        group: at.group,
        mode: at.mode,
        overwrite,
    }
}

/// The key to use: the one on disk, or a new one; `None` when the plan says it is absent
/// or not usable (then nothing is signed with it).
fn material_key(
    observed: &Observed,
    name: &str,
    at: &FileAt,
    action: KeyAction,
) -> Result<Option<(KeyPair, Secret)>, CertsError> {
    Ok(match action {
        KeyAction::Generate => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| {
                CertsError::Issue {
                    name: name.to_owned(),
                    certificate: at.path.to_string(),
                    detail: format!("generating a key failed: {e}"),
                }
            })?;
            let pem = Secret::new(Zeroizing::new(key.serialize_pem()).as_bytes().to_vec());
            Some((key, pem))
        }
        KeyAction::Keep => match key_state(observed, at) {
            KeyState::Usable(key, secret) => Some((*key, secret)),
            KeyState::Missing | KeyState::Unusable => None,
        },
        KeyAction::Absent => None,
    })
}

fn self_sign_authority(
    authority: &AuthoritySpec,
    key: &KeyPair,
    existing: Option<&Secret>,
    now: OffsetDateTime,
) -> Result<(String, OffsetDateTime), CertsError> {
    let fail = |detail: String| CertsError::Issue {
        name: authority.name.clone(),
        certificate: authority.certificate.path.to_string(),
        detail,
    };
    let mut params = base_params(now, authority.validity_days).map_err(&fail)?;
    params.distinguished_name = common_name_dn(&authority.common_name);
    // A renewal keeps the subject and key identifier of the certificate it replaces, so
    // that what it signed before still finds its issuer.
    if let Some(der) = existing.and_then(|s| pem_to_der(s.as_bytes())) {
        if let Ok((_, old)) = X509Certificate::from_der(&der) {
            params.distinguished_name = copy_name(old.subject()).ok_or_else(|| {
                fail("its subject uses a string type this function cannot copy".into())
            })?;
            if let Some(id) = subject_key_id(&old) {
                params.key_identifier_method = KeyIdMethod::PreSpecified(id);
            }
        }
    }
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let not_after = params.not_after;
    let cert = params.self_signed(key).map_err(|e| fail(e.to_string()))?;
    Ok((cert.pem(), not_after))
}

fn sign_leaf(
    leaf: &LeafSpec,
    key: &KeyPair,
    authorities: &HashMap<&str, Authority>,
    now: OffsetDateTime,
) -> Result<(String, OffsetDateTime), CertsError> {
    let fail = |detail: String| CertsError::Issue {
        name: leaf.name.clone(),
        certificate: leaf.certificate.path.to_string(),
        detail,
    };
    let mut params = base_params(now, leaf.validity_days).map_err(&fail)?;
    params.distinguished_name = common_name_dn(&leaf.common_name);
    for name in &leaf.dns_names {
        let name = name
            .clone()
            .try_into()
            .map_err(|e: rcgen::Error| fail(e.to_string()))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params
        .subject_alt_names
        .extend(leaf.ip_addresses.iter().copied().map(SanType::IpAddress));
    params.extended_key_usages = leaf
        .extended_key_usage
        .iter()
        .map(|usage| match usage {
            ExtendedKeyUsage::ServerAuth => rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsage::ClientAuth => rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        })
        .collect();
    // An end entity (basicConstraints CA:FALSE, with a subject key identifier).
    params.is_ca = IsCa::ExplicitNoCa;
    let not_after = params.not_after;
    let cert = match &leaf.issuer {
        // Like the reference's UI certificate: no keyUsage, which would have to include
        // keyCertSign for OpenSSL to treat a self-signed certificate as its own issuer.
        Issuer::SelfSigned => params.self_signed(key),
        Issuer::Authority(name) => {
            let authority = authorities.get(name.as_str());
            let (Some(ca_key), Some(ca_der)) = (
                authority.and_then(|a| a.key.as_ref()),
                authority.and_then(|a| a.certificate_der.as_ref()),
            ) else {
                return Err(fail(format!(
                    "authority {name} has no usable key and certificate"
                )));
            };
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.use_authority_key_identifier_extension = true;
            let issuer = rcgen::Issuer::from_ca_cert_der(&ca_der.clone().into(), ca_key)
                .map_err(|e| fail(format!("reading authority {name}'s certificate: {e}")))?;
            params.signed_by(key, &issuer)
        }
    }
    .map_err(|e| fail(e.to_string()))?;
    Ok((cert.pem(), not_after))
}

/// Validity from `now` minus [`BACKDATE`] to `now` plus `days`, and a random positive
/// 128-bit serial number (a renewal must not repeat its predecessor's serial).
fn base_params(now: OffsetDateTime, days: u32) -> Result<CertificateParams, String> {
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| "the system random number generator failed".to_owned())?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    // Whole seconds: what the certificate can hold, and what `Data` reports.
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(days));
    Ok(params)
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The subject of an existing certificate, attribute by attribute with its string type,
/// so the copy encodes the same. `None` for types this function does not copy.
fn copy_name(name: &x509_parser::x509::X509Name) -> Option<DistinguishedName> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let mut dn = DistinguishedName::new();
    for attr in name.iter_attributes() {
        let oid: Vec<u64> = attr.attr_type().iter()?.collect();
        let text = std::str::from_utf8(attr.attr_value().data).ok()?;
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(text.try_into().ok()?),
            Tag::Ia5String => DnValue::Ia5String(text.try_into().ok()?),
            _ => return None,
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Some(dn)
}

fn subject_key_id(cert: &X509Certificate) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
}

fn pem_to_der(bytes: &[u8]) -> Option<Vec<u8>> {
    match x509_parser::pem::parse_x509_pem(bytes) {
        Ok((_, pem)) if pem.label == "CERTIFICATE" => Some(pem.contents),
        _ => None,
    }
}

fn internal(name: &str, at: &FileAt, detail: &str) -> CertsError {
    CertsError::Issue {
        name: name.to_owned(),
        certificate: at.path.to_string(),
        detail: format!("internal error: {detail}"),
    }
}

/// `2036-11-27T00:03:12Z`, or `unknown` for a file that is not a readable certificate.
pub fn rfc3339(time: Option<OffsetDateTime>) -> String {
    let Some(time) = time else {
        return "unknown".to_owned();
    };
    let t = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
