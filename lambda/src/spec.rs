//! Validation of the custom resource's `ResourceProperties` into a [`TreeSpec`].
//! (stub: interface fixed, body to be written)

use std::path::PathBuf;

/// A validated path relative to the mount: no `..`, `.`, empty components, NUL, not absolute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(PathBuf);

impl RelPath {
    /// Components from the mount downwards.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.to_str().unwrap_or_default().split('/')
    }
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
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
    pub fn from_properties(_props: &serde_json::Value) -> Result<TreeSpec, SpecError> {
        todo!("spec validation")
    }
}
