//! Symlink-safe reconciliation of a [`TreeSpec`] under the mount.
//! (stub: interface fixed, body to be written)

use crate::spec::TreeSpec;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TreeReport {
    pub directories_created: usize,
    pub files_written: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: {problem}")]
    Refused { path: String, problem: String },
}

pub fn apply(_root: &Path, _spec: &TreeSpec) -> Result<TreeReport, TreeError> {
    todo!("reconcile")
}
