//! Symlink-safe reconciliation of a [`TreeSpec`] under the mount.
//!
//! Containers write to the same EFS file system, so any entry below the mount may have
//! been replaced by a symlink pointing outside it. Paths are therefore never resolved
//! as strings: the mount is opened once, and every level below it is reached with
//! `openat(O_NOFOLLOW | O_DIRECTORY)` from the handle of the level above, created with
//! `mkdirat`, and changed only through its own descriptor (`fchown`, `fchmod`). A
//! symlink on any component, the last one included, fails the entry instead of being
//! followed.
//!
//! The work runs in two passes over the declared entries, arranged as a tree of path
//! components. The check pass only looks: it fails on symlinks, hard-linked files and
//! type conflicts among the entries that already exist, so that a conflict found late
//! does not leave a half-built tree, and it notes what each existing entry lacks. The
//! apply pass then creates and changes only what the check pass found lacking, and
//! opens again, without following, everything it changes, because a container may
//! change the tree between the two passes.
//!
//! Why it is shaped this way: on EFS each operation that reaches the server (a lookup,
//! a create, a setattr, an fsync) is a network round trip of about a millisecond, so
//! the cost is the number of round trips in a row, not the CPU. Hence:
//! - the walk holds each directory's handle while it works below it, so every entry
//!   costs one lookup from its parent rather than one per level of its path;
//! - directories are opened with `O_PATH` (a lookup, no open on the server) unless
//!   files are written into them; owner and mode are read from and set through the
//!   handle it holds (`fstat` is answered by the client's cache right after the lookup);
//! - the apply pass skips every subtree in which the check pass found nothing to do,
//!   so an unchanged tree costs one lookup per entry and nothing else;
//! - entries in different subtrees do not depend on each other, so both passes walk
//!   them on a small pool of threads ([`WORKERS`]): a child is queued only once its
//!   parent is done, so parents come before children, and the time grows with the
//!   depth of the tree rather than its number of entries;
//! - a written file is flushed once before its rename, and its directory once after
//!   the last file written into it.
//!
//! Reconciling is idempotent: owner and mode are only changed when they differ, and a
//! file is only written when missing, or when `Overwrite` is set and its content
//! differs, so a second run changes nothing (not even a ctime). When several entries
//! fail, the error reported is the first one in path order, whichever thread met it.

use crate::spec::{FileSpec, RelPath, TreeSpec};
use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Uid};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Most threads that walk the tree. They wait on round trips, not on the CPU, so they
/// are cheap (a few KiB each); 32 keeps the entries of a wide level in flight together.
pub const WORKERS: usize = 32;

/// Stack of each walker thread: the walk is not recursive, so this is plenty.
const WORKER_STACK: usize = 128 * 1024;

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
    let root_fd = Arc::new(open_root(root)?);
    let tree = Tree::new(spec);

    // Check: every existing entry is looked at before anything is written.
    let nodes = tree.nodes.len();
    walk(
        tree.children(ROOT),
        &root_fd,
        nodes,
        OnError::Finish,
        |id, parent, queue| check(&tree, id, parent, queue),
    )?;
    tree.plan();

    // Apply: only the subtrees where the check pass found something to do.
    let report = Counters::default();
    let todo = tree.children(ROOT).filter(|&id| tree.nodes[id].busy());
    walk(todo, &root_fd, nodes, OnError::Stop, |id, parent, queue| {
        reconcile_node(&tree, &report, id, parent, queue)
    })?;
    Ok(TreeReport {
        directories_created: report.directories.load(Ordering::Relaxed),
        files_written: report.files.load(Ordering::Relaxed),
    })
}

/// Owner, group and mode an entry is reconciled to.
#[derive(Debug, Clone, Copy)]
struct Attrs {
    owner: u32,
    group: u32,
    mode: u32,
}

impl Attrs {
    fn of_file(spec: &FileSpec) -> Attrs {
        Attrs {
            owner: spec.owner,
            group: spec.group,
            mode: spec.mode,
        }
    }

    fn differ(&self, stat: &Stat) -> bool {
        stat.st_uid != self.owner || stat.st_gid != self.group || stat.st_mode & 0o7777 != self.mode
    }
}

/// What a parent that is missing and not declared is created as.
const UNDECLARED_PARENT: Attrs = Attrs {
    owner: 0,
    group: 0,
    mode: 0o755,
};

/// Index of a node in [`Tree::nodes`]; nodes are in path order, parents first.
type NodeId = usize;
const ROOT: NodeId = 0;

enum Kind<'a> {
    /// `None`: an undeclared parent, only created when missing.
    Directory(Option<Attrs>),
    File(&'a FileSpec),
}

/// What the check pass found at a node.
enum Found {
    Directory(Stat),
    /// `stale`: `Overwrite` is set and the content differs.
    File {
        stat: Stat,
        stale: bool,
    },
}

struct Node<'a> {
    /// The last component, and the whole path from the mount (for errors).
    name: &'a str,
    path: &'a str,
    kind: Kind<'a>,
    parent: NodeId,
    children: Vec<NodeId>,
    /// Set by the check pass when the entry exists; unset when missing or below one.
    found: OnceLock<Found>,
    /// Whether the apply pass has anything to do here or below (set by [`Tree::plan`]).
    busy: AtomicBool,
    /// Files still to be written into this directory; the last one flushes it.
    writes_left: AtomicUsize,
}

impl Node<'_> {
    fn busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// Whether the apply pass must write or change this entry itself.
    fn lacking(&self) -> bool {
        match (&self.kind, self.found.get()) {
            (_, None) => true,
            (Kind::Directory(Some(attrs)), Some(Found::Directory(stat))) => attrs.differ(stat),
            (Kind::Directory(None), Some(_)) => false,
            (Kind::File(spec), Some(Found::File { stat, stale })) => {
                *stale || Attrs::of_file(spec).differ(stat)
            }
            // The check pass records only what matches the declared kind.
            (_, Some(_)) => false,
        }
    }

    /// Whether this file's content is (re)written, rather than only its attributes set.
    fn writes(&self) -> bool {
        matches!(
            (&self.kind, self.found.get()),
            (Kind::File(_), None | Some(Found::File { stale: true, .. }))
        )
    }
}

/// The declared entries as a tree of path components, undeclared parents included.
struct Tree<'a> {
    nodes: Vec<Node<'a>>,
}

impl<'a> Tree<'a> {
    fn new(spec: &'a TreeSpec) -> Tree<'a> {
        #[derive(Default)]
        struct Draft<'a> {
            path: &'a str,
            kind: Option<Kind<'a>>,
            children: BTreeMap<&'a str, Draft<'a>>,
        }
        let mut root = Draft::default();
        let declared = spec
            .directories
            .iter()
            .map(|d| {
                let attrs = Attrs {
                    owner: d.owner,
                    group: d.group,
                    mode: d.mode,
                };
                (&d.path, Kind::Directory(Some(attrs)))
            })
            .chain(spec.files.iter().map(|f| (&f.path, Kind::File(f))));
        for (path, kind) in declared {
            let full = path.as_str();
            let mut draft = &mut root;
            let mut end = 0;
            for component in path.components() {
                end += component.len();
                draft = draft.children.entry(component).or_default();
                draft.path = &full[..end];
                end += 1;
            }
            draft.kind = Some(kind);
        }

        fn flatten<'a>(
            name: &'a str,
            parent: NodeId,
            draft: Draft<'a>,
            nodes: &mut Vec<Node<'a>>,
        ) -> NodeId {
            let id = nodes.len();
            nodes.push(Node {
                name,
                path: draft.path,
                kind: draft.kind.unwrap_or(Kind::Directory(None)),
                parent,
                children: Vec::new(),
                found: OnceLock::new(),
                busy: AtomicBool::new(false),
                writes_left: AtomicUsize::new(0),
            });
            let children = draft
                .children
                .into_iter()
                .map(|(name, child)| flatten(name, id, child, nodes))
                .collect();
            nodes[id].children = children;
            id
        }
        let mut nodes = Vec::new();
        flatten("", ROOT, root, &mut nodes);
        Tree { nodes }
    }

    fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes[id].children.iter().copied()
    }

    /// Marks what the apply pass must visit, from the leaves up, and counts each
    /// directory's files to be written.
    fn plan(&self) {
        for node in self.nodes.iter().rev() {
            let busy_child = node.children.iter().any(|&c| self.nodes[c].busy());
            let writes = node
                .children
                .iter()
                .filter(|&&c| self.nodes[c].writes())
                .count();
            node.writes_left.store(writes, Ordering::Relaxed);
            node.busy
                .store(busy_child || node.lacking(), Ordering::Relaxed);
        }
    }
}

/// A unit of work: a node, and the handle of the directory it is in.
type Task = (NodeId, Arc<OwnedFd>);

/// What [`walk`] does after a task failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    /// Go on with the other subtrees (the check pass: looking is harmless, and the error
    /// reported must not depend on which thread got there first).
    Finish,
    /// Start no new task (the apply pass: change nothing more).
    Stop,
}

/// Runs `work` on `start` (children of the mount) and on whatever it queues, on up to
/// [`WORKERS`] threads. A task runs only after the one that queued it has finished, so
/// parents come before children. The error returned is the one at the first node in
/// path order among those met.
fn walk<I, F>(
    start: I,
    root: &Arc<OwnedFd>,
    nodes: usize,
    on_error: OnError,
    work: F,
) -> Result<(), TreeError>
where
    I: Iterator<Item = NodeId>,
    F: Fn(NodeId, &Arc<OwnedFd>, &mut Vec<Task>) -> Result<(), TreeError> + Sync,
{
    struct Queue {
        tasks: Vec<Task>,
        running: usize,
    }
    let mut first: Vec<Task> = start.map(|id| (id, Arc::clone(root))).collect();
    // Last in, first out: a subtree is finished before its siblings are opened, which
    // keeps few handles open; reversed so the first entry starts first.
    first.reverse();
    let threads = nodes.min(WORKERS);
    let queue = Mutex::new(Queue {
        tasks: first,
        running: 0,
    });
    let changed = Condvar::new();
    let failed = AtomicBool::new(false);
    let errors: Mutex<Vec<(NodeId, TreeError)>> = Mutex::new(Vec::new());

    let worker = || {
        let mut queued = Vec::new();
        loop {
            let (id, parent) = {
                let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if failed.load(Ordering::Relaxed) {
                        q.tasks.clear();
                    }
                    if let Some(task) = q.tasks.pop() {
                        q.running += 1;
                        break task;
                    }
                    if q.running == 0 {
                        return;
                    }
                    q = changed.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            if let Err(err) = work(id, &parent, &mut queued) {
                if on_error == OnError::Stop {
                    failed.store(true, Ordering::Relaxed);
                }
                queued.clear();
                errors
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((id, err));
            }
            drop(parent);
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.running -= 1;
            // This thread takes one new task itself; wake one other per further task,
            // or everyone when the walk is over.
            let others = queued.len().saturating_sub(1);
            q.tasks.extend(queued.drain(..).rev());
            let over = q.running == 0 && (q.tasks.is_empty() || failed.load(Ordering::Relaxed));
            drop(q);
            if over {
                changed.notify_all();
            } else {
                (0..others).for_each(|_| changed.notify_one());
            }
        }
    };

    std::thread::scope(|scope| {
        // The calling thread works too; the others are extra hands for wide trees.
        for _ in 1..threads {
            let spawned = std::thread::Builder::new()
                .name("tree-walker".into())
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, worker);
            if spawned.is_err() {
                break; // fewer threads only make it slower
            }
        }
        worker();
    });

    let mut errors = errors.into_inner().unwrap_or_else(PoisonError::into_inner);
    errors.sort_by_key(|(id, _)| *id);
    match errors.into_iter().next() {
        Some((_, err)) => Err(err),
        None => Ok(()),
    }
}

/// Check pass at one node: records what exists, fails on what must not be followed or
/// changed, and queues the children of an existing directory.
fn check(
    tree: &Tree,
    id: NodeId,
    parent: &Arc<OwnedFd>,
    queue: &mut Vec<Task>,
) -> Result<(), TreeError> {
    let node = &tree.nodes[id];
    match node.kind {
        Kind::Directory(_) => {
            let flags = OFlags::PATH | DIR_FLAGS;
            let Some(dir) = open_directory_with(parent.as_fd(), node.name, node.path, flags)?
            else {
                return Ok(()); // missing: nothing below it exists either
            };
            let stat = fstat(dir.as_fd(), node.path)?;
            let _ = node.found.set(Found::Directory(stat));
            let dir = Arc::new(dir);
            queue.extend(tree.children(id).map(|c| (c, Arc::clone(&dir))));
            Ok(())
        }
        Kind::File(spec) => {
            let Some(stat) = stat_entry(parent.as_fd(), node.name, node.path)? else {
                return Ok(());
            };
            check_regular_file(&stat, node.path)?;
            let stale = spec.overwrite && {
                let file = open_file(parent.as_fd(), node.name, node.path)?;
                !has_content(&file, &spec.content, node.path)?
            };
            let _ = node.found.set(Found::File { stat, stale });
            Ok(())
        }
    }
}

#[derive(Default)]
struct Counters {
    directories: AtomicUsize,
    files: AtomicUsize,
}

/// Apply pass at one node: creates or changes what the check pass found lacking, and
/// queues the children that have work below them.
fn reconcile_node(
    tree: &Tree,
    report: &Counters,
    id: NodeId,
    parent: &Arc<OwnedFd>,
    queue: &mut Vec<Task>,
) -> Result<(), TreeError> {
    let node = &tree.nodes[id];
    match node.kind {
        Kind::Directory(declared) => {
            let dir = directory(tree, report, id, parent.as_fd(), declared)?;
            let dir = Arc::new(dir);
            let todo = tree.children(id).filter(|&c| tree.nodes[c].busy());
            queue.extend(todo.map(|c| (c, Arc::clone(&dir))));
            Ok(())
        }
        Kind::File(spec) => {
            if node.writes() {
                write(parent.as_fd(), node.name, spec)?;
                report.files.fetch_add(1, Ordering::Relaxed);
                if tree.nodes[node.parent]
                    .writes_left
                    .fetch_sub(1, Ordering::AcqRel)
                    == 1
                {
                    // The last file written here: one flush makes all the renames durable.
                    rfs::fsync(parent.as_fd())
                        .map_err(|errno| fs_error(node.path, "flush the directory", errno))?;
                }
                return Ok(());
            }
            // Only owner or mode differ. Opened before use and checked again through the
            // descriptor: the entry may have been swapped since the check pass.
            let file = open_file(parent.as_fd(), node.name, node.path)?;
            check_regular_file(&fstat(file.as_fd(), node.path)?, node.path)?;
            set_attributes(file.as_fd(), Attrs::of_file(spec), node.path)
        }
    }
}

/// Opens (creating it if missing) the directory at `id` and reconciles its declared
/// attributes, or a created undeclared one's. The handle can change the directory and
/// flush it when that is needed, else it is an `O_PATH` handle only to walk through.
fn directory(
    tree: &Tree,
    report: &Counters,
    id: NodeId,
    parent: BorrowedFd,
    declared: Option<Attrs>,
) -> Result<OwnedFd, TreeError> {
    let node = &tree.nodes[id];
    let (name, path) = (node.name, node.path);
    // Only a directory that files are written into needs a handle that can be flushed;
    // owner and mode are changed through an `O_PATH` one too (see `set_attributes`).
    let flags = if node.writes_left.load(Ordering::Relaxed) > 0 {
        DIR_FLAGS
    } else {
        OFlags::PATH | DIR_FLAGS
    };
    if node.found.get().is_some() {
        if let Some(dir) = open_directory_with(parent, name, path, flags)? {
            // Else the check pass proved owner and mode right.
            if let (true, Some(attrs)) = (node.lacking(), declared) {
                set_attributes(dir.as_fd(), attrs, path)?;
            }
            return Ok(dir);
        }
        // Removed since the check pass: created below like any missing one.
    }
    // Created writable by root only and without special bits, and opened (no-follow)
    // before owner and mode are set.
    let created = match rfs::mkdirat(parent, name, creation_mode(declared)) {
        Ok(()) => true,
        // Someone else created it meanwhile: it is theirs, treat it as existing.
        Err(Errno::EXIST) => false,
        Err(errno) => return Err(fs_error(path, "create the directory", errno)),
    };
    let dir = open_directory_with(parent, name, path, flags)?
        .ok_or_else(|| fs_error(path, "open the new directory", Errno::NOENT))?;
    let attrs = if created {
        report.directories.fetch_add(1, Ordering::Relaxed);
        Some(declared.unwrap_or(UNDECLARED_PARENT))
    } else {
        declared
    };
    if let Some(attrs) = attrs {
        set_attributes(dir.as_fd(), attrs, path)?;
    }
    Ok(dir)
}

/// The mode an entry is created with before its owner is set: at most its declared
/// mode, never writable by anyone but root (the owner until then) and without setuid,
/// setgid or sticky bits, which are only set once the owner is right. Most declared
/// modes (0750, 0640, 0600, ...) come out whole, which saves a `chmod` round trip.
fn creation_mode(declared: Option<Attrs>) -> Mode {
    let mode = declared.unwrap_or(UNDECLARED_PARENT).mode;
    Mode::from_raw_mode(mode & 0o755)
}

/// Writes `spec`'s content atomically: a temporary file in the same directory gets
/// content, owner and mode and is flushed before it is renamed over `name`. The
/// directory itself is flushed by the caller.
fn write(parent: BorrowedFd, name: &str, spec: &FileSpec) -> Result<(), TreeError> {
    let path = spec.path.as_str();
    let attrs = Attrs::of_file(spec);
    let (temp_name, temp) = create_temp(parent, path, creation_mode(Some(attrs)))?;
    let mut temp = File::from(temp);
    // Owner and mode are set before the content while the client still holds the
    // attributes the create returned (a write makes it ask the server again), unless
    // they have setuid, setgid or sticky bits, which a write may clear: then after it.
    let early = attrs.mode & 0o7000 == 0;
    let written = (if early {
        set_attributes(temp.as_fd(), attrs, path)
    } else {
        Ok(())
    })
    .and_then(|()| {
        temp.write_all(spec.content.as_bytes())
            .map_err(|source| io_error(path, "write the temporary file", source))
    })
    .and_then(|()| {
        if early {
            Ok(())
        } else {
            set_attributes(temp.as_fd(), attrs, path)
        }
    })
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
    written
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens the mount point itself, following a symlink there: it is Lambda's, not ours.
fn open_root(root: &Path) -> Result<OwnedFd, TreeError> {
    open_root_with(root, OFlags::empty())
}

/// [`open_root`] with `extra` flags, e.g. `O_PATH` for a handle only walked through.
fn open_root_with(root: &Path, extra: OFlags) -> Result<OwnedFd, TreeError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | extra;
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

/// Opens directory `name` in `parent` with `flags` (which hold at least [`DIR_FLAGS`],
/// `O_PATH` may be added) without following a symlink; `None` if missing.
fn open_directory_with(
    parent: BorrowedFd,
    name: &str,
    path: &str,
    flags: OFlags,
) -> Result<Option<OwnedFd>, TreeError> {
    match rfs::openat(parent, name, flags, Mode::empty()) {
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

/// The entry `name` in `parent`, not following a symlink; `None` if missing.
fn stat_entry(parent: BorrowedFd, name: &str, path: &str) -> Result<Option<Stat>, TreeError> {
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(fs_error(path, "inspect the file", errno)),
    }
}

/// Opens file `name` in `parent` for reading without following a symlink or blocking
/// on a FIFO, and checks through the descriptor that it is a regular file.
fn open_file(parent: BorrowedFd, name: &str, path: &str) -> Result<File, TreeError> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = rfs::openat(parent, name, flags, Mode::empty())
        .map_err(|errno| open_error(path, "open the file", errno))?;
    check_regular_file(&fstat(file.as_fd(), path)?, path)?;
    Ok(File::from(file))
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

/// Creates a new temporary file with `mode` in `parent`. The name is unique per process
/// and attempt; `O_EXCL` settles collisions with other writers.
fn create_temp(parent: BorrowedFd, path: &str, mode: Mode) -> Result<(String, OwnedFd), TreeError> {
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
        match rfs::openat(parent, &name, flags, mode) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(errno) => return Err(fs_error(path, "create a temporary file", errno)),
        }
    }
    Err(fs_error(path, "create a temporary file", last))
}

/// Sets owner and mode through `fd`, each only if it differs. Owner goes first because
/// `chown` may clear setuid/setgid bits; the mode is then set again if it had any.
/// `fd` may be an `O_PATH` handle of a directory, which saves opening it on the server.
fn set_attributes(fd: BorrowedFd, attrs: Attrs, path: &str) -> Result<(), TreeError> {
    let stat = fstat(fd, path)?;
    let mut mode = stat.st_mode & 0o7777;
    if stat.st_uid != attrs.owner || stat.st_gid != attrs.group {
        // `fchown` refuses an `O_PATH` handle; `AT_EMPTY_PATH` takes it.
        rfs::chownat(
            fd,
            "",
            Some(Uid::from_raw(attrs.owner)),
            Some(Gid::from_raw(attrs.group)),
            AtFlags::EMPTY_PATH,
        )
        .map_err(|errno| fs_error(path, "change the owner", errno))?;
        if mode & 0o6000 != 0 {
            mode = fstat(fd, path)?.st_mode & 0o7777;
        }
    }
    if mode != attrs.mode {
        change_mode(fd, Mode::from_raw_mode(attrs.mode))
            .map_err(|errno| fs_error(path, "change the mode", errno))?;
    }
    Ok(())
}

/// `fchmod`, also for an `O_PATH` handle of a directory, which `fchmod` refuses: then
/// through `/proc/self/fd`, whose link leads to the very inode the handle holds (no name
/// is looked up again), or, without `/proc`, through a handle opened on its `.`.
fn change_mode(fd: BorrowedFd, mode: Mode) -> Result<(), Errno> {
    match rfs::fchmod(fd, mode) {
        Err(Errno::BADF) => {}
        other => return other,
    }
    match rfs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()), mode) {
        Err(Errno::NOENT | Errno::NOTDIR) => {}
        other => return other,
    }
    let dir = rfs::openat(fd, ".", DIR_FLAGS, Mode::empty())?;
    rfs::fchmod(dir, mode)
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

/// Reads the file at `path` below `root` without following a symlink on any component,
/// for what must be looked at before the tree is reconciled (existing certificates and
/// keys). `Ok(None)` if it or one of its parents is missing. Reads at most `limit` bytes.
/// A symlink, a non-regular or hard-linked file, or a parent that is not a directory
/// fails as it does in the walk.
pub fn read_file(root: &Path, path: &RelPath, limit: u64) -> Result<Option<Vec<u8>>, TreeError> {
    let mut dir = open_root_with(root, OFlags::PATH)?;
    let (parent, name) = match path.as_str().rsplit_once('/') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, path.as_str()),
    };
    let mut end = 0;
    for component in parent.into_iter().flat_map(|p| p.split('/')) {
        end += component.len();
        let prefix = &path.as_str()[..end];
        end += 1;
        // Only walked through: `O_PATH` saves an open and a close on the server per level.
        match open_directory_with(dir.as_fd(), component, prefix, OFlags::PATH | DIR_FLAGS)? {
            Some(next) => dir = next,
            None => return Ok(None),
        }
    }
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = match rfs::openat(dir.as_fd(), name, flags, Mode::empty()) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Ok(None),
        Err(errno) => return Err(open_error(path.as_str(), "open the file", errno)),
    };
    check_regular_file(&fstat(file.as_fd(), path.as_str())?, path.as_str())?;
    let mut bytes = Vec::new();
    File::from(file)
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| io_error(path.as_str(), "read the file", source))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The walker's guarantee the apply pass relies on: a task runs only after its
    /// parent's, however many threads take part.
    #[test]
    fn the_walk_visits_parents_before_children() {
        let dirs = (0..30)
            .flat_map(|g| (0..5).map(move |d| format!("t{g}/d{d}/e/f")))
            .map(|path| serde_json::json!({ "Path": path }))
            .collect::<Vec<_>>();
        let spec =
            TreeSpec::from_properties(&serde_json::json!({ "Directories": dirs })).expect("spec");
        let tree = Tree::new(&spec);
        let root = Arc::new(open_root(Path::new("/")).expect("root"));
        let visited = Mutex::new(Vec::new());
        walk(
            tree.children(ROOT),
            &root,
            tree.nodes.len(),
            OnError::Finish,
            |id, parent, queue: &mut Vec<Task>| {
                visited.lock().expect("lock").push(id);
                queue.extend(tree.children(id).map(|c| (c, Arc::clone(parent))));
                Ok(())
            },
        )
        .expect("walk");
        let visited = visited.into_inner().expect("lock");
        assert_eq!(visited.len(), tree.nodes.len() - 1, "every node once");
        let mut seen = HashSet::from([ROOT]);
        for id in visited {
            assert!(
                seen.contains(&tree.nodes[id].parent),
                "{}",
                tree.nodes[id].path
            );
            seen.insert(id);
        }
    }
}
