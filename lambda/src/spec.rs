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
//! - Unknown keys are rejected at both levels (except CloudFormation's own
//!   `ServiceToken` and `ServiceTimeout`), so a typo such as `Ownr` fails loudly instead
//!   of silently leaving a directory root-owned.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

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

const TOP_KEYS: [&str; 2] = ["Directories", "Files"];
/// Top-level keys CloudFormation adds itself; they are not part of the tree.
const SERVICE_KEYS: [&str; 2] = ["ServiceToken", "ServiceTimeout"];
const DIR_KEYS: [&str; 4] = ["Path", "Owner", "Group", "Mode"];
const FILE_KEYS: [&str; 6] = ["Path", "Owner", "Group", "Mode", "Content", "Overwrite"];

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: RelPath,
    pub content: String,
    pub owner: u32,
    pub group: u32,
    pub mode: u32,
    pub overwrite: bool,
}

/// The whole declared tree. Paths are unique across both lists and no path lies inside a
/// declared file, so the reconciler can process entries in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSpec {
    pub directories: Vec<DirSpec>,
    pub files: Vec<FileSpec>,
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
                "unknown property; expected Directories or Files".into(),
            ));
        }
        let spec = TreeSpec {
            directories: entries(top, "Directories", dir_spec)?,
            files: entries(top, "Files", file_spec)?,
        };
        spec.check_paths_are_distinct()?;
        Ok(spec)
    }

    /// Rejects a path declared twice, and any path that would have to pass through a
    /// declared file.
    fn check_paths_are_distinct(&self) -> Result<(), SpecError> {
        let dirs = self
            .directories
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("Directories[{i}]"), &d.path));
        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("Files[{i}]"), &f.path));
        let all: Vec<(String, &RelPath)> = dirs.chain(files).collect();

        let mut declared: HashMap<&str, &str> = HashMap::new();
        for (entry, path) in &all {
            if let Some(first) = declared.insert(path.as_str(), entry) {
                return Err(invalid(
                    &format!("{entry}.Path"),
                    format!("{} is already declared by {first}", quote(path.as_str())),
                ));
            }
        }
        let files: HashMap<&str, usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.as_str(), i))
            .collect();
        for (entry, path) in &all {
            if let Some((ancestor, i)) = path.ancestors().find_map(|a| files.get(a).map(|i| (a, i)))
            {
                return Err(invalid(
                    &format!("{entry}.Path"),
                    format!(
                        "{} is inside {}, which Files[{i}] declares as a file",
                        quote(path.as_str()),
                        quote(ancestor)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Parses the optional list `key` (absent means empty) with `parse` for each entry.
fn entries<T>(
    top: &Map<String, Value>,
    key: &str,
    parse: fn(&Entry) -> Result<T, SpecError>,
) -> Result<Vec<T>, SpecError> {
    let Some(value) = top.get(key) else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or_else(|| invalid(key, type_problem("a list", value)))?;
    list.iter()
        .enumerate()
        .map(|(i, value)| {
            let name = format!("{key}[{i}]");
            let map = value
                .as_object()
                .ok_or_else(|| invalid(&name, type_problem("an object with a Path", value)))?;
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
