//! Validation of the custom resource's `ResourceProperties` into a [`TreeSpec`].
//!
//! Everything is checked here, before anything touches the disk, so that one bad entry
//! means nothing is written. Each error names the offending field the way a template
//! author sees it (`Directories[3].Mode`), because that text becomes the FAILED reason
//! shown in the CloudFormation console.
//!
//! Decisions worth knowing when writing a template:
//! - CloudFormation delivers every scalar as a string, so `Owner`/`Group` accept a JSON
//!   number or a string of decimal digits, and `Overwrite` accepts `true`/`false` as a
//!   boolean or as the exact strings `"true"`/`"false"`.
//! - `Mode` must be a string of octal digits (`"0750"` or `"750"`). A JSON number is
//!   rejected: an unquoted YAML `0750` may reach us as the decimal 488, and guessing
//!   which base the author meant is how trees end up world-writable.
//! - Unknown keys are rejected at every level (except CloudFormation's own
//!   `ServiceToken` and `ServiceTimeout`), so a typo such as `Ownr` fails loudly instead
//!   of silently leaving a directory root-owned.
//! - `Certificates` declares TLS material ([`CertsSpec`]); its files are paths of the same
//!   tree, so they follow the same path rules and may not collide with `Directories`,
//!   `Files` or each other. Their parents need not be declared: a missing one is created
//!   like any undeclared parent (`root:root 0755`); declare it to choose owner and mode.
//!   A private key's mode may grant nothing to group or others.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// Longest accepted path, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path component, in bytes (Linux's `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Deepest accepted path; Cloud Exchange needs a handful of levels.
pub const MAX_DEPTH: usize = 64;
/// Largest accepted seed file. Seed files are small configuration files; the cap keeps a
/// mistaken template from filling the file system or the Lambda's memory.
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;
/// Highest accepted owner or group: `u32::MAX` means "unchanged" to `chown(2)`.
pub const MAX_ID: u32 = u32::MAX - 1;
/// Highest accepted mode: permission bits plus setuid, setgid and sticky.
pub const MAX_MODE: u32 = 0o7777;
/// Mode of a declared directory that does not say otherwise.
pub const DEFAULT_DIR_MODE: u32 = 0o755;
/// Mode of a declared file that does not say otherwise.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// Most certificates one resource may declare. Each adds two `Data` attributes, and the
/// whole response must stay within CloudFormation's 4096 bytes (pinned by a test).
pub const MAX_CERTIFICATES: usize = 12;
/// Longest accepted validity (and renewal window): about a hundred years.
pub const MAX_DAYS: u32 = 36500;
/// Renewal window used when `RenewBeforeDays` is absent.
pub const DEFAULT_RENEW_BEFORE_DAYS: u32 = 30;
/// Mode of a certificate file that does not say otherwise.
pub const DEFAULT_CERT_MODE: u32 = 0o644;
/// Mode of a private key (or a file holding one) that does not say otherwise.
pub const DEFAULT_KEY_MODE: u32 = 0o600;
/// X.520's upper bound for a common name, in characters.
const MAX_COMMON_NAME: usize = 64;

const TOP_KEYS: [&str; 3] = ["Directories", "Files", "Certificates"];
/// Top-level keys CloudFormation adds itself; they are not part of the tree.
const SERVICE_KEYS: [&str; 2] = ["ServiceToken", "ServiceTimeout"];
const DIR_KEYS: [&str; 4] = ["Path", "Owner", "Group", "Mode"];
const FILE_KEYS: [&str; 6] = ["Path", "Owner", "Group", "Mode", "Content", "Overwrite"];
const CERTS_KEYS: [&str; 3] = ["RenewBeforeDays", "Authorities", "Leaves"];
const AUTHORITY_KEYS: [&str; 5] = ["Name", "CommonName", "ValidityDays", "Certificate", "Key"];
const LEAF_KEYS: [&str; 10] = [
    "Name",
    "Issuer",
    "CommonName",
    "DnsNames",
    "IpAddresses",
    "ExtendedKeyUsage",
    "ValidityDays",
    "Certificate",
    "Key",
    "CombinedPem",
];
/// The `Issuer` of a self-signed leaf; no authority may take this name.
const SELF_ISSUER: &str = "Self";

/// A validated path relative to the mount: not absolute, no `..`, `.` or empty
/// components, no NUL, within [`MAX_PATH_BYTES`], [`MAX_COMPONENT_BYTES`] and
/// [`MAX_DEPTH`]. Components are joined by single `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(String);

impl RelPath {
    /// Components from the mount downwards.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks `raw` against every path rule; the error is the problem, without the field.
    fn parse(raw: &str) -> Result<RelPath, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.starts_with('/') {
            return Err(format!(
                "{} is absolute; paths are relative to the mount",
                quote(raw)
            ));
        }
        if raw.contains('\0') {
            return Err("contains a NUL byte".into());
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(format!(
                "is {} bytes long; the limit is {MAX_PATH_BYTES}",
                raw.len()
            ));
        }
        let mut depth = 0;
        for component in raw.split('/') {
            depth += 1;
            match component {
                "" => return Err(format!("{} has an empty component", quote(raw))),
                "." | ".." => return Err(format!("\"{component}\" component is not allowed")),
                long if long.len() > MAX_COMPONENT_BYTES => {
                    return Err(format!(
                        "component {} is {} bytes long; the limit is {MAX_COMPONENT_BYTES}",
                        quote(long),
                        long.len()
                    ))
                }
                _ => {}
            }
        }
        if depth > MAX_DEPTH {
            return Err(format!("has {depth} components; the limit is {MAX_DEPTH}"));
        }
        Ok(RelPath(raw.to_owned()))
    }

    /// Proper ancestors, nearest to the mount first: `a/b/c` → `a`, `a/b`.
    fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(slash, _)| &self.0[..slash])
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    pub path: RelPath,
    pub owner: u32,
    pub group: u32,
    pub mode: u32,
}

/// A seed file. Its `Debug` shows the content's length only: content may be a private key
/// (generated certificates become file entries too) or an operator's setting.
#[derive(Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: RelPath,
    pub content: String,
    pub owner: u32,
    pub group: u32,
    pub mode: u32,
    pub overwrite: bool,
}

impl fmt::Debug for FileSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSpec")
            .field("path", &self.path)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("owner", &self.owner)
            .field("group", &self.group)
            .field("mode", &format_args!("{:#o}", self.mode))
            .field("overwrite", &self.overwrite)
            .finish()
    }
}

/// The whole declared tree. Paths are unique across all lists and no path lies inside a
/// declared file, so the reconciler can process entries in any order. The reconciler
/// writes `directories` and `files`; `certificates` are turned into file entries first
/// (see [`crate::certs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSpec {
    pub directories: Vec<DirSpec>,
    pub files: Vec<FileSpec>,
    pub certificates: CertsSpec,
}

/// Where one generated file goes, with its owner and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAt {
    pub path: RelPath,
    pub owner: u32,
    pub group: u32,
    pub mode: u32,
}

/// The `Certificates` property: authorities (CAs) and the leaves they (or the leaves
/// themselves) sign. Names are unique across both lists; every leaf's issuer exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsSpec {
    /// A certificate of ours expiring within this many days is re-issued.
    pub renew_before_days: u32,
    pub authorities: Vec<AuthoritySpec>,
    pub leaves: Vec<LeafSpec>,
}

impl Default for CertsSpec {
    fn default() -> Self {
        Self {
            renew_before_days: DEFAULT_RENEW_BEFORE_DAYS,
            authorities: Vec::new(),
            leaves: Vec::new(),
        }
    }
}

impl CertsSpec {
    /// Every declared certificate's name, authorities first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let authorities = self.authorities.iter().map(|a| a.name.as_str());
        authorities.chain(self.leaves.iter().map(|l| l.name.as_str()))
    }
}

/// A certificate authority: a self-signed CA certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoritySpec {
    pub name: String,
    pub common_name: String,
    pub validity_days: u32,
    pub certificate: FileAt,
    pub key: FileAt,
}

/// Who signs a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// The leaf's own key (`Issuer: Self`).
    SelfSigned,
    /// The declared authority of this name.
    Authority(String),
}

/// Extended key usages a leaf may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendedKeyUsage {
    ServerAuth,
    ClientAuth,
}

/// An end-entity certificate with its key and, optionally, both in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    pub name: String,
    pub issuer: Issuer,
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    pub validity_days: u32,
    pub certificate: FileAt,
    pub key: FileAt,
    /// The certificate followed by the key (MongoDB's `tlsCertificateKeyFile`).
    pub combined_pem: Option<FileAt>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// `field` names the entry, e.g. `Directories[3].Mode`.
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

impl TreeSpec {
    /// Validates CloudFormation's `ResourceProperties`; the first problem found is
    /// returned, naming its field.
    pub fn from_properties(props: &Value) -> Result<TreeSpec, SpecError> {
        let top = props
            .as_object()
            .ok_or_else(|| invalid("ResourceProperties", type_problem("an object", props)))?;
        if let Some(unknown) = top
            .keys()
            .find(|key| !TOP_KEYS.contains(&key.as_str()) && !SERVICE_KEYS.contains(&key.as_str()))
        {
            return Err(invalid(
                &field_name(unknown),
                "unknown property; expected Directories, Files or Certificates".into(),
            ));
        }
        let spec = TreeSpec {
            directories: entries(top, "", "Directories", dir_spec)?,
            files: entries(top, "", "Files", file_spec)?,
            certificates: match top.get("Certificates") {
                Some(value) => certs_spec(value)?,
                None => CertsSpec::default(),
            },
        };
        spec.check_paths_are_distinct()?;
        Ok(spec)
    }

    /// Rejects a path declared twice, and any path that would have to pass through a
    /// declared file (certificate and key files included).
    fn check_paths_are_distinct(&self) -> Result<(), SpecError> {
        // (entry name, path, whether it is a file)
        let mut all: Vec<(String, &RelPath, bool)> = Vec::new();
        for (i, d) in self.directories.iter().enumerate() {
            all.push((format!("Directories[{i}]"), &d.path, false));
        }
        for (i, f) in self.files.iter().enumerate() {
            all.push((format!("Files[{i}]"), &f.path, true));
        }
        for (entry, at) in self.certificates.files() {
            all.push((entry, &at.path, true));
        }

        let mut declared: HashMap<&str, &str> = HashMap::new();
        for (entry, path, _) in &all {
            if let Some(first) = declared.insert(path.as_str(), entry) {
                return Err(invalid(
                    &format!("{entry}.Path"),
                    format!("{} is already declared by {first}", quote(path.as_str())),
                ));
            }
        }
        let files: HashMap<&str, &str> = all
            .iter()
            .filter(|(_, _, is_file)| *is_file)
            .map(|(entry, path, _)| (path.as_str(), entry.as_str()))
            .collect();
        for (entry, path, _) in &all {
            if let Some((ancestor, owner)) =
                path.ancestors().find_map(|a| files.get(a).map(|e| (a, e)))
            {
                return Err(invalid(
                    &format!("{entry}.Path"),
                    format!(
                        "{} is inside {}, which {owner} declares as a file",
                        quote(path.as_str()),
                        quote(ancestor)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl CertsSpec {
    /// Every file a certificate declares, with the entry name errors use
    /// (`Certificates.Leaves[0].Key`).
    pub fn files(&self) -> Vec<(String, &FileAt)> {
        let mut out = Vec::new();
        for (i, a) in self.authorities.iter().enumerate() {
            let entry = format!("Certificates.Authorities[{i}]");
            out.push((format!("{entry}.Certificate"), &a.certificate));
            out.push((format!("{entry}.Key"), &a.key));
        }
        for (i, l) in self.leaves.iter().enumerate() {
            let entry = format!("Certificates.Leaves[{i}]");
            out.push((format!("{entry}.Certificate"), &l.certificate));
            out.push((format!("{entry}.Key"), &l.key));
            if let Some(combined) = &l.combined_pem {
                out.push((format!("{entry}.CombinedPem"), combined));
            }
        }
        out
    }
}

/// The `Certificates` object: both lists, then the checks across them.
fn certs_spec(value: &Value) -> Result<CertsSpec, SpecError> {
    let map = value.as_object().ok_or_else(|| {
        invalid(
            "Certificates",
            type_problem("an object with Authorities and Leaves", value),
        )
    })?;
    let top = Entry {
        name: "Certificates".into(),
        map,
    };
    top.reject_unknown_keys(&CERTS_KEYS)?;
    let spec = CertsSpec {
        renew_before_days: top
            .optional("RenewBeforeDays", |v| days(v, 0))?
            .unwrap_or(DEFAULT_RENEW_BEFORE_DAYS),
        authorities: entries(map, "Certificates.", "Authorities", authority_spec)?,
        leaves: entries(map, "Certificates.", "Leaves", leaf_spec)?,
    };
    let count = spec.authorities.len() + spec.leaves.len();
    if count > MAX_CERTIFICATES {
        return Err(invalid(
            "Certificates",
            format!(
                "declares {count} certificates; the limit is {MAX_CERTIFICATES} (each adds two \
                 Data attributes to a response limited to 4096 bytes)"
            ),
        ));
    }

    let mut names: HashMap<&str, String> = HashMap::new();
    let authorities = spec.authorities.iter().enumerate().map(|(i, a)| {
        (
            format!("Certificates.Authorities[{i}]"),
            &a.name,
            a.validity_days,
        )
    });
    let leaves = spec.leaves.iter().enumerate().map(|(i, l)| {
        (
            format!("Certificates.Leaves[{i}]"),
            &l.name,
            l.validity_days,
        )
    });
    for (entry, name, validity_days) in authorities.chain(leaves) {
        if validity_days <= spec.renew_before_days {
            return Err(invalid(
                &format!("{entry}.ValidityDays"),
                format!(
                    "{validity_days} must be more than RenewBeforeDays ({}), or every Update \
                     would re-issue it",
                    spec.renew_before_days
                ),
            ));
        }
        if let Some(first) = names.insert(name, entry.clone()) {
            return Err(invalid(
                &format!("{entry}.Name"),
                format!("{} is already declared by {first}", quote(name)),
            ));
        }
    }
    for (i, leaf) in spec.leaves.iter().enumerate() {
        if let Issuer::Authority(name) = &leaf.issuer {
            if !spec.authorities.iter().any(|a| &a.name == name) {
                let declared: Vec<&str> =
                    spec.authorities.iter().map(|a| a.name.as_str()).collect();
                return Err(invalid(
                    &format!("Certificates.Leaves[{i}].Issuer"),
                    format!(
                        "{} is not a declared authority; expected {SELF_ISSUER}{}{}",
                        quote(name),
                        if declared.is_empty() {
                            ""
                        } else {
                            " or one of "
                        },
                        declared.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(spec)
}

fn authority_spec(entry: &Entry) -> Result<AuthoritySpec, SpecError> {
    entry.reject_unknown_keys(&AUTHORITY_KEYS)?;
    Ok(AuthoritySpec {
        name: entry.required("Name", cert_name, "is required")?,
        common_name: entry.required("CommonName", common_name, "is required")?,
        validity_days: entry.required("ValidityDays", |v| days(v, 1), "is required")?,
        certificate: entry.file_at("Certificate", DEFAULT_CERT_MODE, false)?,
        key: entry.file_at("Key", DEFAULT_KEY_MODE, true)?,
    })
}

fn leaf_spec(entry: &Entry) -> Result<LeafSpec, SpecError> {
    entry.reject_unknown_keys(&LEAF_KEYS)?;
    let name = entry.required("Name", cert_name, "is required")?;
    let issuer = entry.required(
        "Issuer",
        issuer,
        "is required (Self, or the Name of an authority)",
    )?;
    let common_name = entry.required("CommonName", common_name, "is required")?;
    let dns_names = entry.string_list("DnsNames", dns_name)?.unwrap_or_default();
    let ip_addresses = entry
        .string_list("IpAddresses", ip_address)?
        .unwrap_or_default();
    let extended_key_usage = entry
        .string_list("ExtendedKeyUsage", extended_key_usage)?
        .filter(|usages| !usages.is_empty())
        .ok_or_else(|| {
            invalid(
                &entry.field("ExtendedKeyUsage"),
                "is required: a list of ServerAuth and/or ClientAuth".into(),
            )
        })?;
    Ok(LeafSpec {
        name,
        issuer,
        common_name,
        dns_names,
        ip_addresses,
        extended_key_usage,
        validity_days: entry.required("ValidityDays", |v| days(v, 1), "is required")?,
        certificate: entry.file_at("Certificate", DEFAULT_CERT_MODE, false)?,
        key: entry.file_at("Key", DEFAULT_KEY_MODE, true)?,
        combined_pem: entry.optional_file_at("CombinedPem", DEFAULT_KEY_MODE, true)?,
    })
}

/// Parses the optional list `key` (absent means empty) with `parse` for each entry;
/// `prefix` is prepended to names in errors (`Certificates.`).
fn entries<T>(
    top: &Map<String, Value>,
    prefix: &str,
    key: &str,
    parse: fn(&Entry) -> Result<T, SpecError>,
) -> Result<Vec<T>, SpecError> {
    let Some(value) = top.get(key) else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or_else(|| invalid(&format!("{prefix}{key}"), type_problem("a list", value)))?;
    let expected = if prefix.is_empty() {
        "an object with a Path"
    } else {
        "an object with a Name"
    };
    list.iter()
        .enumerate()
        .map(|(i, value)| {
            let name = format!("{prefix}{key}[{i}]");
            let map = value
                .as_object()
                .ok_or_else(|| invalid(&name, type_problem(expected, value)))?;
            parse(&Entry { name, map })
        })
        .collect()
}

/// One list entry with its display name, for field-naming errors.
struct Entry<'a> {
    name: String,
    map: &'a Map<String, Value>,
}

impl Entry<'_> {
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn reject_unknown_keys(&self, known: &[&str]) -> Result<(), SpecError> {
        match self.map.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(invalid(
                &self.field(&field_name(key)),
                format!("unknown key; expected one of {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// Runs `parse` on `key` if present, naming the field in its error.
    fn optional<T>(
        &self,
        key: &str,
        parse: fn(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, SpecError> {
        self.map
            .get(key)
            .map(|value| parse(value).map_err(|problem| invalid(&self.field(key), problem)))
            .transpose()
    }

    fn required<T>(
        &self,
        key: &str,
        parse: fn(&Value) -> Result<T, String>,
        missing: &str,
    ) -> Result<T, SpecError> {
        self.optional(key, parse)?
            .ok_or_else(|| invalid(&self.field(key), missing.into()))
    }

    /// `Path`, `Owner` and `Group`, shared by both kinds of entry.
    fn common(&self) -> Result<(RelPath, u32, u32), SpecError> {
        Ok((
            self.required("Path", path, "is required")?,
            self.optional("Owner", id)?.unwrap_or(0),
            self.optional("Group", id)?.unwrap_or(0),
        ))
    }

    /// The optional list of strings `key`, each checked by `parse`; errors name the item
    /// (`DnsNames[2]`).
    fn string_list<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<Option<Vec<T>>, SpecError> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        let list = value
            .as_array()
            .ok_or_else(|| invalid(&self.field(key), type_problem("a list of strings", value)))?;
        list.iter()
            .enumerate()
            .map(|(i, item)| {
                let field = format!("{}[{i}]", self.field(key));
                let text = item
                    .as_str()
                    .ok_or_else(|| invalid(&field, type_problem("a string", item)))?;
                parse(text).map_err(|problem| invalid(&field, problem))
            })
            .collect::<Result<Vec<T>, SpecError>>()
            .map(Some)
    }

    /// The required file object `key` (`{Path, Owner, Group, Mode}`).
    fn file_at(&self, key: &str, default_mode: u32, secret: bool) -> Result<FileAt, SpecError> {
        self.optional_file_at(key, default_mode, secret)?
            .ok_or_else(|| {
                invalid(
                    &self.field(key),
                    "is required: an object with Path, Owner, Group and Mode".into(),
                )
            })
    }

    /// The optional file object `key`. A `secret` one (it holds a private key) may grant
    /// nothing to group or others.
    fn optional_file_at(
        &self,
        key: &str,
        default_mode: u32,
        secret: bool,
    ) -> Result<Option<FileAt>, SpecError> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        let name = self.field(key);
        let map = value.as_object().ok_or_else(|| {
            invalid(
                &name,
                type_problem("an object with Path, Owner, Group and Mode", value),
            )
        })?;
        let entry = Entry { name, map };
        entry.reject_unknown_keys(&DIR_KEYS)?;
        let (path, owner, group) = entry.common()?;
        let mode = entry.optional("Mode", mode)?.unwrap_or(default_mode);
        if secret && mode & !0o700 != 0 {
            return Err(invalid(
                &entry.field("Mode"),
                format!(
                    "\"{mode:04o}\" is not owner-only; a file holding a private key must stay \
                     within 0700, such as \"0600\""
                ),
            ));
        }
        Ok(Some(FileAt {
            path,
            owner,
            group,
            mode,
        }))
    }
}

fn dir_spec(entry: &Entry) -> Result<DirSpec, SpecError> {
    entry.reject_unknown_keys(&DIR_KEYS)?;
    let (path, owner, group) = entry.common()?;
    Ok(DirSpec {
        path,
        owner,
        group,
        mode: entry.optional("Mode", mode)?.unwrap_or(DEFAULT_DIR_MODE),
    })
}

fn file_spec(entry: &Entry) -> Result<FileSpec, SpecError> {
    entry.reject_unknown_keys(&FILE_KEYS)?;
    let (path, owner, group) = entry.common()?;
    Ok(FileSpec {
        path,
        owner,
        group,
        mode: entry.optional("Mode", mode)?.unwrap_or(DEFAULT_FILE_MODE),
        content: entry.required("Content", content, "is required (it may be empty)")?,
        overwrite: entry.optional("Overwrite", overwrite)?.unwrap_or(false),
    })
}

fn path(value: &Value) -> Result<RelPath, String> {
    let raw = value
        .as_str()
        .ok_or_else(|| type_problem("a string", value))?;
    RelPath::parse(raw)
}

/// A user or group id: a JSON number or a string of decimal digits.
fn id(value: &Value) -> Result<u32, String> {
    let out_of_range = |shown: String| format!("{shown} is not an id in 0..={MAX_ID}");
    match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= MAX_ID)
            .ok_or_else(|| out_of_range(n.to_string())),
        Value::String(s) => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(out_of_range(quote(s)));
            }
            s.parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_ID)
                .ok_or_else(|| out_of_range(quote(s)))
        }
        other => Err(type_problem("a number or a string of digits", other)),
    }
}

/// A mode: a string of octal digits, at most [`MAX_MODE`].
fn mode(value: &Value) -> Result<u32, String> {
    let raw = match value {
        Value::String(s) => s,
        Value::Number(n) => {
            return Err(format!(
                "must be a string of octal digits such as \"0750\", got the number {n}; \
                 quote it (an unquoted YAML 0750 can arrive as the decimal 488)"
            ))
        }
        other => {
            return Err(type_problem(
                "a string of octal digits such as \"0750\"",
                other,
            ))
        }
    };
    let not_octal = || format!("{} is not an octal mode", quote(raw));
    if raw.is_empty() {
        return Err(not_octal());
    }
    let mut mode: u32 = 0;
    for digit in raw.chars() {
        mode = mode * 8 + digit.to_digit(8).ok_or_else(not_octal)?;
        if mode > MAX_MODE {
            return Err(format!("{} is above 0{MAX_MODE:o}", quote(raw)));
        }
    }
    Ok(mode)
}

fn content(value: &Value) -> Result<String, String> {
    let text = value
        .as_str()
        .ok_or_else(|| type_problem("a string", value))?;
    if text.len() > MAX_CONTENT_BYTES {
        return Err(format!(
            "is {} bytes; the limit is {MAX_CONTENT_BYTES}",
            text.len()
        ));
    }
    Ok(text.to_owned())
}

/// A boolean, or the strings CloudFormation turns booleans into.
fn overwrite(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        Value::String(s) => Err(format!("must be true or false, got {}", quote(s))),
        other => Err(type_problem("true or false", other)),
    }
}

/// A whole number of days in `min..=MAX_DAYS`: a JSON number or a string of digits.
fn days(value: &Value, min: u32) -> Result<u32, String> {
    let out_of_range =
        |shown: String| format!("{shown} is not a number of days in {min}..={MAX_DAYS}");
    let parsed = match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| out_of_range(n.to_string()))?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u32>().map_err(|_| out_of_range(quote(s)))?
        }
        Value::String(s) => return Err(out_of_range(quote(s))),
        other => return Err(type_problem("a number or a string of digits", other)),
    };
    if (min..=MAX_DAYS).contains(&parsed) {
        Ok(parsed)
    } else {
        Err(out_of_range(parsed.to_string()))
    }
}

/// A certificate's `Name`: it becomes part of `Data` attribute names, so it is kept to
/// `^[A-Z][A-Za-z0-9]{0,63}$`.
fn cert_name(value: &Value) -> Result<String, String> {
    let raw = value
        .as_str()
        .ok_or_else(|| type_problem("a string", value))?;
    let mut bytes = raw.bytes();
    let well_formed = bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_alphanumeric())
        && raw.len() <= 64;
    if !well_formed {
        return Err(format!(
            "{} must be 1 to 64 letters and digits starting with a capital letter",
            quote(raw)
        ));
    }
    if raw == SELF_ISSUER {
        return Err(format!(
            "\"{SELF_ISSUER}\" is reserved for self-signed leaves"
        ));
    }
    Ok(raw.to_owned())
}

fn issuer(value: &Value) -> Result<Issuer, String> {
    let raw = value
        .as_str()
        .ok_or_else(|| type_problem("a string", value))?;
    Ok(if raw == SELF_ISSUER {
        Issuer::SelfSigned
    } else {
        Issuer::Authority(raw.to_owned())
    })
}

/// A subject common name: 1 to 64 characters (X.520's bound), no control characters.
fn common_name(value: &Value) -> Result<String, String> {
    let raw = value
        .as_str()
        .ok_or_else(|| type_problem("a string", value))?;
    let chars = raw.chars().count();
    if chars == 0 || chars > MAX_COMMON_NAME {
        return Err(format!(
            "must be 1 to {MAX_COMMON_NAME} characters, got {chars}"
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(format!("{} contains a control character", quote(raw)));
    }
    Ok(raw.to_owned())
}

/// A host name for a subjectAltName: letters, digits and hyphens in labels of at most 63
/// bytes, at most 253 bytes, optionally `*.` first. An IP address belongs in `IpAddresses`.
fn dns_name(raw: &str) -> Result<String, String> {
    let name = raw.strip_prefix("*.").unwrap_or(raw);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if raw.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{} is an IP address; list it under IpAddresses",
            quote(raw)
        ));
    }
    if raw.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{} is not a DNS name", quote(raw)));
    }
    Ok(raw.to_owned())
}

fn ip_address(raw: &str) -> Result<IpAddr, String> {
    raw.parse()
        .map_err(|_| format!("{} is not an IPv4 or IPv6 address", quote(raw)))
}

fn extended_key_usage(raw: &str) -> Result<ExtendedKeyUsage, String> {
    match raw {
        "ServerAuth" => Ok(ExtendedKeyUsage::ServerAuth),
        "ClientAuth" => Ok(ExtendedKeyUsage::ClientAuth),
        other => Err(format!("{} is not ServerAuth or ClientAuth", quote(other))),
    }
}

fn invalid(field: &str, problem: String) -> SpecError {
    SpecError::Invalid {
        field: field.to_owned(),
        problem,
    }
}

/// "must be X, got a Y" without echoing the value, which may be file content.
fn type_problem(expected: &str, got: &Value) -> String {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    format!("must be {expected}, got {got}")
}

/// Echoes a user-supplied string in an error, shortened so a 4 KiB path cannot crowd
/// the rest of the reason out of CloudFormation's 4 KiB response.
fn quote(raw: &str) -> String {
    const SHOWN: usize = 64;
    if raw.len() <= SHOWN {
        return format!("{raw:?}");
    }
    let mut end = SHOWN;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &raw[..end])
}

/// An unknown key used as a field name: as written when it looks like a key, quoted
/// and shortened otherwise.
fn field_name(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        key.to_owned()
    } else {
        quote(key)
    }
}
