//! Symlink-safe reconciliation of a [`TreeSpec`] under the mount.
//!
//! Containers write to the same EFS file system, so any entry below the mount may have
//! been replaced by a symlink pointing outside it. Paths are therefore never resolved
//! as strings: the mount is opened once, and every level below it is reached with
//! `openat(O_NOFOLLOW | O_DIRECTORY)` from the level above, created with `mkdirat`, and
//! changed only through its own descriptor (`fchown`, `fchmod`). A symlink on any
//! component, the last one included, fails the entry instead of being followed.
//!
//! The work runs in two passes over the same walk. The check pass only looks: it fails
//! on symlinks and type conflicts among the entries that already exist, so that a
//! conflict found late does not leave a half-built tree. The apply pass then creates and
//! changes, checking everything again as it goes, because a container may change the
//! tree between the two passes.
//!
//! Reconciling is idempotent: owner and mode are only changed when they differ, and a
//! file is only written when missing, or when `Overwrite` is set and its content
//! differs, so a second run changes nothing (not even a ctime).

use crate::spec::{FileSpec, RelPath, TreeSpec};
use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Uid};
use rustix::io::Errno;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TreeReport {
    /// Directories created, undeclared parents included.
    pub directories_created: usize,
    /// Files created or replaced.
    pub files_written: usize,
}

/// Why the tree could not be reconciled. `path` is relative to the mount, as declared.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("mount point {} does not exist: is the EFS file system mounted?", root.display())]
    MountMissing { root: PathBuf },
    #[error("mount point {} is not a directory", root.display())]
    MountNotADirectory { root: PathBuf },
    #[error("{path}: is a symbolic link; refusing to follow it")]
    Symlink { path: String },
    #[error("{path}: exists but is not a directory")]
    NotADirectory { path: String },
    #[error("{path}: exists but is not a regular file")]
    NotAFile { path: String },
    /// Changing owner or mode of a hard-linked file would change it under its other
    /// name too, which may lie outside the mount.
    #[error(
        "{path}: has more than one hard link; refusing to change a file shared with another path"
    )]
    HardLinked { path: String },
    #[error("{path}: cannot {op}: the file system is read-only")]
    ReadOnly { path: String, op: &'static str },
    #[error("{path}: cannot {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Reconciles `spec` under `root`, the mount point. `root` itself may be a symlink
/// (Lambda manages the mount); nothing below it is followed.
pub fn apply(root: &Path, spec: &TreeSpec) -> Result<TreeReport, TreeError> {
    let root_fd = open_root(root)?;
    let mut entries: Vec<Entry> = spec
        .directories
        .iter()
        .map(|d| Entry {
            path: &d.path,
            target: Target::Directory(Attrs {
                owner: d.owner,
                group: d.group,
                mode: d.mode,
            }),
        })
        .chain(spec.files.iter().map(|f| Entry {
            path: &f.path,
            target: Target::File(f),
        }))
        .collect();
    // Parents before children, so a declared parent is created with its own attributes
    // rather than as an undeclared one.
    entries.sort_by(|a, b| a.path.components().cmp(b.path.components()));

    let mut report = TreeReport::default();
    for pass in [Pass::Check, Pass::Apply] {
        let mut walker = Walker {
            root: root_fd.as_fd(),
            pass,
            report: &mut report,
        };
        for entry in &entries {
            walker.entry(entry)?;
        }
    }
    Ok(report)
}

/// Owner, group and mode an entry is reconciled to.
#[derive(Debug, Clone, Copy)]
struct Attrs {
    owner: u32,
    group: u32,
    mode: u32,
}

/// What a parent that is missing and not declared is created as.
const UNDECLARED_PARENT: Attrs = Attrs {
    owner: 0,
    group: 0,
    mode: 0o755,
};

struct Entry<'a> {
    path: &'a RelPath,
    target: Target<'a>,
}

enum Target<'a> {
    Directory(Attrs),
    File(&'a FileSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Look only; stop descending where the tree ends.
    Check,
    /// Create, change and write.
    Apply,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens the mount point itself, following a symlink there: it is Lambda's, not ours.
fn open_root(root: &Path) -> Result<OwnedFd, TreeError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rfs::open(root, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::NOENT => TreeError::MountMissing {
            root: root.to_owned(),
        },
        Errno::NOTDIR => TreeError::MountNotADirectory {
            root: root.to_owned(),
        },
        other => fs_error(&root.display().to_string(), "open the mount point", other),
    })
}

struct Walker<'a> {
    root: BorrowedFd<'a>,
    pass: Pass,
    report: &'a mut TreeReport,
}

impl Walker<'_> {
    fn entry(&mut self, entry: &Entry) -> Result<(), TreeError> {
        let path = entry.path.as_str();
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (Some(parent), name),
            None => (None, path),
        };
        let Some(dir) = self.parent(parent)? else {
            return Ok(());
        };
        match entry.target {
            Target::Directory(attrs) => self
                .directory(dir.as_fd(), name, path, Some(attrs))
                .map(drop),
            Target::File(file) => self.file(dir.as_fd(), name, file),
        }
    }

    /// Opens (in the apply pass: creates) every level of `parent`. `None` means the
    /// check pass reached a level that does not exist yet.
    fn parent(&mut self, parent: Option<&str>) -> Result<Option<OwnedFd>, TreeError> {
        let mut dir = self
            .root
            .try_clone_to_owned()
            .map_err(|source| TreeError::Io {
                path: ".".into(),
                op: "duplicate the mount handle",
                source,
            })?;
        let Some(parent) = parent else {
            return Ok(Some(dir));
        };
        let mut end = 0;
        for component in parent.split('/') {
            end += component.len();
            let prefix = &parent[..end];
            end += 1;
            match self.directory(dir.as_fd(), component, prefix, None)? {
                Some(next) => dir = next,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// Opens directory `name` in `parent` without following a symlink. A missing one is
    /// created in the apply pass; `declared` attributes are reconciled, and a created
    /// undeclared one gets [`UNDECLARED_PARENT`]'s. `path` is for errors.
    fn directory(
        &mut self,
        parent: BorrowedFd,
        name: &str,
        path: &str,
        declared: Option<Attrs>,
    ) -> Result<Option<OwnedFd>, TreeError> {
        if let Some(dir) = open_directory(parent, name, path)? {
            if let (Pass::Apply, Some(attrs)) = (self.pass, declared) {
                reconcile(dir.as_fd(), attrs, path)?;
            }
            return Ok(Some(dir));
        }
        if self.pass == Pass::Check {
            return Ok(None);
        }
        // Created private and opened (no-follow) before anything is widened.
        let created = match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            // Someone else created it meanwhile: it is theirs, treat it as existing.
            Err(Errno::EXIST) => false,
            Err(errno) => return Err(fs_error(path, "create the directory", errno)),
        };
        let dir = open_directory(parent, name, path)?
            .ok_or_else(|| fs_error(path, "open the new directory", Errno::NOENT))?;
        let attrs = if created {
            self.report.directories_created += 1;
            Some(declared.unwrap_or(UNDECLARED_PARENT))
        } else {
            declared
        };
        if let Some(attrs) = attrs {
            reconcile(dir.as_fd(), attrs, path)?;
        }
        Ok(Some(dir))
    }

    /// Checks, and in the apply pass reconciles, the declared file `name` in `parent`.
    fn file(&mut self, parent: BorrowedFd, name: &str, spec: &FileSpec) -> Result<(), TreeError> {
        let path = spec.path.as_str();
        let attrs = Attrs {
            owner: spec.owner,
            group: spec.group,
            mode: spec.mode,
        };
        let existing = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(stat),
            Err(Errno::NOENT) => None,
            Err(errno) => return Err(fs_error(path, "inspect the file", errno)),
        };
        match (existing, self.pass) {
            (None, Pass::Check) => Ok(()),
            (None, Pass::Apply) => self.write(parent, name, spec, attrs),
            (Some(stat), Pass::Check) => check_regular_file(&stat, path),
            (Some(_), Pass::Apply) => {
                // Opened before use and checked again through the descriptor: the entry
                // may have been swapped since `statat`.
                let flags = OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC;
                let file = rfs::openat(parent, name, flags, Mode::empty())
                    .map_err(|errno| open_error(path, "open the file", errno))?;
                check_regular_file(&fstat(file.as_fd(), path)?, path)?;
                let file = File::from(file);
                if spec.overwrite && !has_content(&file, &spec.content, path)? {
                    return self.write(parent, name, spec, attrs);
                }
                reconcile(file.as_fd(), attrs, path)
            }
        }
    }

    /// Writes `spec`'s content atomically: a temporary file in the same directory gets
    /// content, owner and mode and is flushed before it is renamed over `name`.
    fn write(
        &mut self,
        parent: BorrowedFd,
        name: &str,
        spec: &FileSpec,
        attrs: Attrs,
    ) -> Result<(), TreeError> {
        let path = spec.path.as_str();
        let (temp_name, temp) = create_temp(parent, path)?;
        let mut temp = File::from(temp);
        let written = temp
            .write_all(spec.content.as_bytes())
            .map_err(|source| io_error(path, "write the temporary file", source))
            .and_then(|()| reconcile(temp.as_fd(), attrs, path))
            .and_then(|()| {
                temp.sync_all()
                    .map_err(|source| io_error(path, "flush the temporary file", source))
            })
            .and_then(|()| {
                rfs::renameat(parent, &temp_name, parent, name)
                    .map_err(|errno| fs_error(path, "rename the temporary file into place", errno))
            });
        if written.is_err() {
            // Best effort: the original error is the one worth reporting.
            let _ = rfs::unlinkat(parent, &temp_name, AtFlags::empty());
        }
        written?;
        rfs::fsync(parent).map_err(|errno| fs_error(path, "flush the directory", errno))?;
        self.report.files_written += 1;
        Ok(())
    }
}

/// Opens directory `name` in `parent` without following a symlink; `None` if missing.
fn open_directory(
    parent: BorrowedFd,
    name: &str,
    path: &str,
) -> Result<Option<OwnedFd>, TreeError> {
    match rfs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(dir) => Ok(Some(dir)),
        Err(Errno::NOENT) => Ok(None),
        // `O_DIRECTORY | O_NOFOLLOW` reports a symlink as `ENOTDIR`; tell them apart.
        Err(Errno::NOTDIR) => match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                Err(TreeError::Symlink { path: path.into() })
            }
            _ => Err(TreeError::NotADirectory { path: path.into() }),
        },
        Err(errno) => Err(open_error(path, "open the directory", errno)),
    }
}

fn check_regular_file(stat: &Stat, path: &str) -> Result<(), TreeError> {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile if stat.st_nlink > 1 => {
            Err(TreeError::HardLinked { path: path.into() })
        }
        FileType::RegularFile => Ok(()),
        FileType::Symlink => Err(TreeError::Symlink { path: path.into() }),
        _ => Err(TreeError::NotAFile { path: path.into() }),
    }
}

/// Whether `file` holds exactly `content`; reads at most one byte more than that.
fn has_content(file: &File, content: &str, path: &str) -> Result<bool, TreeError> {
    let limit = content.len() as u64 + 1;
    let mut current = Vec::with_capacity(content.len());
    file.take(limit)
        .read_to_end(&mut current)
        .map_err(|source| io_error(path, "read the file", source))?;
    Ok(current == content.as_bytes())
}

/// Creates a new, private temporary file in `parent`. The name is unique per process
/// and attempt; `O_EXCL` settles collisions with other writers.
fn create_temp(parent: BorrowedFd, path: &str) -> Result<(String, OwnedFd), TreeError> {
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    const ATTEMPTS: usize = 16;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut last = Errno::EXIST;
    for _ in 0..ATTEMPTS {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            ".ce-efs-tree.{}.{nanos}.{}.tmp",
            std::process::id(),
            ATTEMPT.fetch_add(1, Ordering::Relaxed)
        );
        match rfs::openat(parent, &name, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(errno) => return Err(fs_error(path, "create a temporary file", errno)),
        }
    }
    Err(fs_error(path, "create a temporary file", last))
}

/// Sets owner and mode through `fd`, each only if it differs. Owner goes first because
/// `chown` may clear setuid/setgid bits that the mode then restores.
fn reconcile(fd: BorrowedFd, attrs: Attrs, path: &str) -> Result<(), TreeError> {
    let mut stat = fstat(fd, path)?;
    if stat.st_uid != attrs.owner || stat.st_gid != attrs.group {
        rfs::fchown(
            fd,
            Some(Uid::from_raw(attrs.owner)),
            Some(Gid::from_raw(attrs.group)),
        )
        .map_err(|errno| fs_error(path, "change the owner", errno))?;
        stat = fstat(fd, path)?;
    }
    if stat.st_mode & 0o7777 != attrs.mode {
        rfs::fchmod(fd, Mode::from_raw_mode(attrs.mode))
            .map_err(|errno| fs_error(path, "change the mode", errno))?;
    }
    Ok(())
}

fn fstat(fd: BorrowedFd, path: &str) -> Result<Stat, TreeError> {
    rfs::fstat(fd).map_err(|errno| fs_error(path, "inspect", errno))
}

/// An error from a no-follow open: `ELOOP` there means the entry is a symlink.
fn open_error(path: &str, op: &'static str, errno: Errno) -> TreeError {
    match errno {
        Errno::LOOP => TreeError::Symlink { path: path.into() },
        other => fs_error(path, op, other),
    }
}

fn fs_error(path: &str, op: &'static str, errno: Errno) -> TreeError {
    io_error(path, op, errno.into())
}

/// Read-only file systems get their own variant: it is the likely misconfiguration.
fn io_error(path: &str, op: &'static str, source: std::io::Error) -> TreeError {
    match source.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::ROFS) => TreeError::ReadOnly {
            path: path.into(),
            op,
        },
        _ => TreeError::Io {
            path: path.into(),
            op,
            source,
        },
    }
}
