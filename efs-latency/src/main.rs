//! An EFS latency model for measuring: a FUSE file system that passes every operation through
//! to a folder after a fixed delay, and counts the operations by kind.
//!
//! On EFS every metadata operation that reaches the server (lookup, create, setattr,
//! fsync, ...) is a network round trip of about a millisecond, so what a client pays is
//! the number of operations that miss its caches times that latency, overlapped as far
//! as it issues them concurrently. This model reproduces exactly that and nothing
//! more: each request the kernel forwards sleeps `--latency-ms` before it is carried out
//! on the backing folder, requests are served by a pool of threads so concurrent ones
//! overlap as on a real server, and the kernel's entry and attribute timeouts model the
//! NFS client's attribute cache (`--cache-secs 0` turns it off, like `actimeo=0`).
//!
//! Usage: `efs-latency [--latency-ms N] [--cache-secs S] [--threads N] [--stats FILE]
//! [--as-uid UID --as-gid GID [--secondary-gids G,...]] BACKING MOUNTPOINT`. It prints
//! `ready` once mounted and serves until unmounted (`fusermount3 -u MOUNTPOINT`), then
//! writes the counts as JSON to `--stats` (or stdout). Runs as root and is mounted with
//! `allow_other`, so every user of the machine (and of a container) can use it.
//!
//! Without `--as-uid` the passthrough works as root and sets owners as requested. With
//! `--as-uid`/`--as-gid` it is an EFS *access point*: BACKING is the access point's root
//! directory, and every operation is made as that uid/gid whatever the caller's identity
//! (EFS replaces the NFS client's user with the access point's `PosixUser`): the server
//! drops to that identity once mounted, so the backing file system checks permissions as
//! it and new files are owned by it, exactly as on EFS; a container's root gets no
//! override. In both modes every path is resolved beneath BACKING without following a
//! symbolic link (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, then `*at`
//! calls on the last component that never follow it): symbolic links are the client's
//! to resolve, as on NFS, and a link swapped into a path never leads the server out of
//! the root.

use fuser::{
    AccessFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, Session, SessionACL, TimeOrNow, WriteFlags,
};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The operations counted, in the order they are reported.
#[derive(Debug, Clone, Copy)]
enum Op {
    Lookup,
    Getattr,
    Setattr,
    Readlink,
    Mknod,
    Mkdir,
    Unlink,
    Rmdir,
    Symlink,
    Rename,
    Link,
    Open,
    Read,
    Write,
    Flush,
    Release,
    Fsync,
    Opendir,
    Readdir,
    Releasedir,
    Fsyncdir,
    Statfs,
    Access,
    Create,
}

const OPS: [(Op, &str); 24] = [
    (Op::Lookup, "lookup"),
    (Op::Getattr, "getattr"),
    (Op::Setattr, "setattr"),
    (Op::Readlink, "readlink"),
    (Op::Mknod, "mknod"),
    (Op::Mkdir, "mkdir"),
    (Op::Unlink, "unlink"),
    (Op::Rmdir, "rmdir"),
    (Op::Symlink, "symlink"),
    (Op::Rename, "rename"),
    (Op::Link, "link"),
    (Op::Open, "open"),
    (Op::Read, "read"),
    (Op::Write, "write"),
    (Op::Flush, "flush"),
    (Op::Release, "release"),
    (Op::Fsync, "fsync"),
    (Op::Opendir, "opendir"),
    (Op::Readdir, "readdir"),
    (Op::Releasedir, "releasedir"),
    (Op::Fsyncdir, "fsyncdir"),
    (Op::Statfs, "statfs"),
    (Op::Access, "access"),
    (Op::Create, "create"),
];

type Counts = Arc<[AtomicU64; OPS.len()]>;

struct Args {
    latency: Duration,
    cache: Duration,
    threads: usize,
    stats: Option<PathBuf>,
    identity: Option<Identity>,
    backing: PathBuf,
    mountpoint: PathBuf,
}

/// The identity an access point forces on every operation (its `PosixUser`).
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    uid: u32,
    gid: u32,
    secondary_gids: Vec<u32>,
}

const USAGE: &str = "usage: efs-latency [--latency-ms N] [--cache-secs S] [--threads N] \
                     [--stats FILE] [--as-uid UID --as-gid GID [--secondary-gids G,...]] \
                     BACKING MOUNTPOINT";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut latency_ms = 1.0_f64;
    let mut cache_secs = 3.0_f64;
    let mut threads = 64_usize;
    let mut stats = None;
    let (mut uid, mut gid, mut secondary_gids) = (None, None, Vec::new());
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--latency-ms" => latency_ms = number(&value("--latency-ms")?, "--latency-ms")?,
            "--cache-secs" => cache_secs = number(&value("--cache-secs")?, "--cache-secs")?,
            "--threads" => {
                threads = value("--threads")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--threads expects a positive integer")?;
            }
            "--stats" => stats = Some(PathBuf::from(value("--stats")?)),
            "--as-uid" => uid = Some(id(&value("--as-uid")?, "--as-uid")?),
            "--as-gid" => gid = Some(id(&value("--as-gid")?, "--as-gid")?),
            "--secondary-gids" => {
                secondary_gids = value("--secondary-gids")?
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(|g| id(g, "--secondary-gids"))
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other => positional.push(PathBuf::from(other)),
        }
    }
    let [backing, mountpoint]: [PathBuf; 2] = positional
        .try_into()
        .map_err(|_| "expected BACKING and MOUNTPOINT".to_string())?;
    let identity = match (uid, gid) {
        (Some(uid), Some(gid)) => Some(Identity {
            uid,
            gid,
            secondary_gids,
        }),
        (None, None) if secondary_gids.is_empty() => None,
        _ => return Err("--as-uid and --as-gid go together (--secondary-gids needs both)".into()),
    };
    Ok(Args {
        latency: Duration::from_secs_f64(latency_ms / 1000.0),
        cache: Duration::from_secs_f64(cache_secs),
        threads,
        stats,
        identity,
        backing: fs::canonicalize(&backing).map_err(|e| format!("{}: {e}", backing.display()))?,
        mountpoint,
    })
}

fn id(text: &str, name: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .map_err(|_| format!("{name} expects a numeric id, got {text:?}"))
}

fn number(text: &str, name: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{name} expects a non-negative number, got {text:?}"))
}

/// Inode numbers the kernel knows, mapped to backing paths (and back by backing inode).
struct Nodes {
    paths: HashMap<u64, PathBuf>,
    by_backing: HashMap<u64, u64>,
    next: u64,
}

struct EfsLatency {
    /// The backing folder, as given (the prefix of every path in `Nodes`).
    backing: PathBuf,
    /// The backing folder, held open: every path is resolved beneath it.
    root: OwnedFd,
    latency: Duration,
    ttl: Duration,
    counts: Counts,
    nodes: Mutex<Nodes>,
    handles: Mutex<HashMap<u64, File>>,
    next_fh: AtomicU64,
}

type FsResult<T> = std::result::Result<T, Errno>;

fn errno(err: impl Into<io::Error>) -> Errno {
    Errno::from(err.into())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EfsLatency {
    fn new(backing: &Path, latency: Duration, ttl: Duration, counts: Counts) -> io::Result<Self> {
        let root = fs::metadata(backing)?;
        let root_fd = rfs::open(
            backing,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let nodes = Nodes {
            paths: HashMap::from([(INodeNo::ROOT.0, backing.to_owned())]),
            by_backing: HashMap::from([(root.ino(), INodeNo::ROOT.0)]),
            next: INodeNo::ROOT.0 + 1,
        };
        Ok(EfsLatency {
            backing: backing.to_owned(),
            root: root_fd,
            latency,
            ttl,
            counts,
            nodes: Mutex::new(nodes),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        })
    }

    /// Counts the operation and spends the round trip before it reaches the "server".
    fn arrive(&self, op: Op) {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
    }

    fn path(&self, ino: INodeNo) -> FsResult<PathBuf> {
        lock(&self.nodes)
            .paths
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ESTALE)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> FsResult<PathBuf> {
        Ok(self.path(parent)?.join(name))
    }

    /// The folder holding `path` and its last component, for the `*at` calls: the folder is
    /// opened beneath the backing root without following any symbolic link, so neither a
    /// `..` nor a link swapped into the path leads out of it. The root itself is `(root, ".")`.
    fn at(&self, path: &Path) -> FsResult<(OwnedFd, OsString)> {
        let rel = path.strip_prefix(&self.backing).map_err(|_| Errno::EXDEV)?;
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            let root = rfs::openat(&self.root, ".", DIR_PATH, Mode::empty()).map_err(errno)?;
            return Ok((root, OsString::from(".")));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let dir =
            rfs::openat2(&self.root, parent, DIR_PATH, Mode::empty(), BENEATH).map_err(errno)?;
        Ok((dir, name.to_owned()))
    }

    /// The object at `path` itself, never a link's target: a symbolic link opens as the link.
    fn pin(&self, path: &Path, flags: OFlags) -> FsResult<File> {
        let (dir, name) = self.at(path)?;
        open_beside(&dir, &name, flags)
    }

    /// `lstat`, resolved beneath the root.
    fn lstat(&self, path: &Path) -> FsResult<Metadata> {
        self.pin(path, OFlags::PATH)?.metadata().map_err(errno)
    }

    /// The kernel's inode number for the backing file at `path`, allocated on first sight.
    fn remember(&self, path: &Path, meta: &Metadata) -> INodeNo {
        let mut nodes = lock(&self.nodes);
        let ino = match nodes.by_backing.get(&meta.ino()) {
            Some(ino) => *ino,
            None => {
                let ino = nodes.next;
                nodes.next += 1;
                nodes.by_backing.insert(meta.ino(), ino);
                ino
            }
        };
        nodes.paths.insert(ino, path.to_owned());
        INodeNo(ino)
    }

    /// Forgets a backing inode that was removed, so a reused number is a new inode.
    fn removed(&self, meta: &Metadata) {
        if meta.nlink() <= 1 || meta.is_dir() {
            let mut nodes = lock(&self.nodes);
            if let Some(ino) = nodes.by_backing.remove(&meta.ino()) {
                nodes.paths.remove(&ino);
            }
        }
    }

    fn attr(&self, path: &Path) -> FsResult<(INodeNo, FileAttr)> {
        let meta = self.lstat(path)?;
        let ino = self.remember(path, &meta);
        Ok((ino, file_attr(ino, &meta)))
    }

    fn reply_entry(&self, path: &Path, reply: ReplyEntry) {
        match self.attr(path) {
            Ok((_, attr)) => reply.entry(&self.ttl, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open_handle(&self, file: File) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, file);
        FileHandle(fh)
    }

    fn with_handle<T>(
        &self,
        fh: FileHandle,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> FsResult<T> {
        let file = lock(&self.handles)
            .get(&fh.0)
            .map(File::try_clone)
            .ok_or(Errno::EBADF)?
            .map_err(errno)?;
        f(&file).map_err(errno)
    }

    #[allow(clippy::too_many_arguments)]
    fn set_attributes(
        &self,
        path: &Path,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> FsResult<FileAttr> {
        let (dir, name) = self.at(path)?;
        if uid.is_some() || gid.is_some() {
            let (uid, gid) = (uid.map(rfs::Uid::from_raw), gid.map(rfs::Gid::from_raw));
            rfs::chownat(&dir, &name, uid, gid, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
        }
        if let Some(mode) = mode {
            // fchmodat cannot refuse to follow a link: change the pinned object through
            // its descriptor's /proc entry (links themselves have no mode on Linux).
            let pinned = open_beside(&dir, &name, OFlags::PATH)?;
            if pinned.metadata().map_err(errno)?.is_symlink() {
                return Err(Errno::EOPNOTSUPP);
            }
            let proc = format!("/proc/self/fd/{}", pinned.as_raw_fd());
            rfs::chmod(proc.as_str(), Mode::from_raw_mode(mode & 0o7777)).map_err(errno)?;
        }
        if let Some(size) = size {
            match fh {
                Some(fh) => self.with_handle(fh, |f| f.set_len(size))?,
                None => open_beside(&dir, &name, OFlags::WRONLY)?
                    .set_len(size)
                    .map_err(errno)?,
            }
        }
        if atime.is_some() || mtime.is_some() {
            let times = Timestamps {
                last_access: timespec(atime),
                last_modification: timespec(mtime),
            };
            rfs::utimensat(&dir, &name, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
        }
        Ok(self.attr(path)?.1)
    }
}

/// Opens a folder only as a place to resolve names in.
const DIR_PATH: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

/// Resolution beneath the root: no `..` above it, no symbolic link, no /proc magic link.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Opens `name` in `dir` without following a link in its place.
fn open_beside(dir: &OwnedFd, name: &OsStr, flags: OFlags) -> FsResult<File> {
    open_beside_mode(dir, name, flags, Mode::empty())
}

fn open_beside_mode(dir: &OwnedFd, name: &OsStr, flags: OFlags, mode: Mode) -> FsResult<File> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rfs::openat(dir, name, flags, mode)
        .map(File::from)
        .map_err(errno)
}

fn timespec(time: Option<TimeOrNow>) -> Timespec {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    match time {
        None => Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT as _,
        },
        Some(TimeOrNow::Now) => Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW as _,
        },
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            }
        }
    }
}

fn system_time(secs: i64, nsecs: i64) -> SystemTime {
    let nanos = u32::try_from(nsecs).unwrap_or(0);
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

fn file_attr(ino: INodeNo, meta: &Metadata) -> FileAttr {
    let ft = meta.file_type();
    FileAttr {
        ino,
        size: meta.size(),
        blocks: meta.blocks(),
        atime: system_time(meta.atime(), meta.atime_nsec()),
        mtime: system_time(meta.mtime(), meta.mtime_nsec()),
        ctime: system_time(meta.ctime(), meta.ctime_nsec()),
        crtime: system_time(meta.ctime(), meta.ctime_nsec()),
        kind: FileType::from_std(ft).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

/// Flags for opening the backing file: the kernel has already created, truncated on
/// create and resolved the name; the rest (access mode, append, sync, ...) passes.
fn backing_flags(flags: i32) -> OFlags {
    let raw = u32::from_ne_bytes(flags.to_ne_bytes());
    (OFlags::from_bits_retain(raw) - (OFlags::CREATE | OFlags::EXCL | OFlags::NOCTTY))
        | OFlags::CLOEXEC
}

impl Filesystem for EfsLatency {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Like an NFS client: lookups in one directory may run in parallel.
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.arrive(Op::Lookup);
        match self.child(parent, name) {
            Ok(path) => self.reply_entry(&path, reply),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.arrive(Op::Getattr);
        let attr = match fh {
            Some(fh) => self
                .with_handle(fh, File::metadata)
                .map(|meta| file_attr(ino, &meta)),
            None => self.path(ino).and_then(|p| self.attr(&p)).map(|(_, a)| a),
        };
        match attr {
            Ok(attr) => reply.attr(&self.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.arrive(Op::Setattr);
        let attr = self
            .path(ino)
            .and_then(|path| self.set_attributes(&path, mode, uid, gid, size, atime, mtime, fh));
        match attr {
            Ok(attr) => reply.attr(&self.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.arrive(Op::Readlink);
        let target = self.path(ino).and_then(|p| {
            let (dir, name) = self.at(&p)?;
            rfs::readlinkat(&dir, &name, Vec::new()).map_err(errno)
        });
        match target {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.arrive(Op::Mknod);
        let made = self.child(parent, name).and_then(|path| {
            let kind = rfs::FileType::from_raw_mode(mode);
            let (dir, name) = self.at(&path)?;
            rfs::mknodat(
                &dir,
                &name,
                kind,
                Mode::from_raw_mode(mode & 0o7777),
                rdev.into(),
            )
            .map_err(errno)
            .map(|()| path)
        });
        match made {
            Ok(path) => self.reply_entry(&path, reply),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.arrive(Op::Mkdir);
        let made = self.child(parent, name).and_then(|path| {
            let (dir, name) = self.at(&path)?;
            rfs::mkdirat(&dir, &name, Mode::from_raw_mode(mode & 0o7777))
                .map_err(errno)
                .map(|()| path)
        });
        match made {
            Ok(path) => self.reply_entry(&path, reply),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrive(Op::Unlink);
        let done = self.child(parent, name).and_then(|path| {
            let meta = self.lstat(&path)?;
            let (dir, name) = self.at(&path)?;
            rfs::unlinkat(&dir, &name, AtFlags::empty()).map_err(errno)?;
            self.removed(&meta);
            Ok(())
        });
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.arrive(Op::Rmdir);
        let done = self.child(parent, name).and_then(|path| {
            let meta = self.lstat(&path)?;
            let (dir, name) = self.at(&path)?;
            rfs::unlinkat(&dir, &name, AtFlags::REMOVEDIR).map_err(errno)?;
            self.removed(&meta);
            Ok(())
        });
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.arrive(Op::Symlink);
        let made = self.child(parent, link_name).and_then(|path| {
            let (dir, name) = self.at(&path)?;
            rfs::symlinkat(target, &dir, &name)
                .map_err(errno)
                .map(|()| path)
        });
        match made {
            Ok(path) => self.reply_entry(&path, reply),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.arrive(Op::Rename);
        let done = (|| {
            let from = self.child(parent, name)?;
            let to = self.child(newparent, newname)?;
            let replaced = self.lstat(&to).ok();
            let how = rfs::RenameFlags::from_bits_retain(flags.bits());
            let ((from_dir, from_name), (to_dir, to_name)) = (self.at(&from)?, self.at(&to)?);
            rfs::renameat_with(&from_dir, &from_name, &to_dir, &to_name, how).map_err(errno)?;
            if let Some(meta) = replaced.filter(|_| !flags.contains(RenameFlags::RENAME_EXCHANGE)) {
                self.removed(&meta);
            }
            let mut nodes = lock(&self.nodes);
            for path in nodes.paths.values_mut() {
                if let Ok(rest) = path.strip_prefix(&from) {
                    *path = if rest.as_os_str().is_empty() {
                        to.clone()
                    } else {
                        to.join(rest)
                    };
                }
            }
            Ok(())
        })();
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.arrive(Op::Link);
        let made = (|| {
            let from = self.path(ino)?;
            let to = self.child(newparent, newname)?;
            let ((from_dir, from_name), (to_dir, to_name)) = (self.at(&from)?, self.at(&to)?);
            rfs::linkat(&from_dir, &from_name, &to_dir, &to_name, AtFlags::empty())
                .map_err(errno)?;
            Ok(to)
        })();
        match made {
            Ok(path) => self.reply_entry(&path, reply),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.arrive(Op::Open);
        let opened = self
            .path(ino)
            .and_then(|path| self.pin(&path, backing_flags(flags.0)));
        match opened {
            Ok(file) => reply.opened(self.open_handle(file), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.arrive(Op::Read);
        let data = self.with_handle(fh, |file| {
            let mut buf = vec![0; size as usize];
            let n = file.read_at(&mut buf, offset)?;
            buf.truncate(n);
            Ok(buf)
        });
        match data {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.arrive(Op::Write);
        match self.with_handle(fh, |file| file.write_all_at(data, offset)) {
            Ok(()) => reply.written(u32::try_from(data.len()).unwrap_or(u32::MAX)),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.arrive(Op::Flush);
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.arrive(Op::Release);
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.arrive(Op::Fsync);
        let synced = self.with_handle(fh, |f| {
            if datasync {
                f.sync_data()
            } else {
                f.sync_all()
            }
        });
        match synced {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.arrive(Op::Opendir);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        let opened = self.path(ino).and_then(|path| self.pin(&path, flags));
        match opened {
            Ok(dir) => reply.opened(self.open_handle(dir), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.arrive(Op::Readdir);
        let listed = self.path(ino).and_then(|path| {
            let mut entries = vec![
                (ino, FileType::Directory, OsStr::new(".").to_owned()),
                (ino, FileType::Directory, OsStr::new("..").to_owned()),
            ];
            let dir = self.pin(&path, OFlags::RDONLY | OFlags::DIRECTORY)?;
            let names = OwnedFd::from(dir.try_clone().map_err(errno)?);
            for entry in rfs::Dir::new(names).map_err(errno)? {
                let entry = entry.map_err(errno)?;
                let name = OsStr::from_bytes(entry.file_name().to_bytes());
                if name == "." || name == ".." {
                    continue;
                }
                let meta = open_beside(
                    &OwnedFd::from(dir.try_clone().map_err(errno)?),
                    name,
                    OFlags::PATH,
                )?
                .metadata()
                .map_err(errno)?;
                let child = self.remember(&path.join(name), &meta);
                let kind = FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile);
                entries.push((child, kind, name.to_owned()));
            }
            Ok(entries)
        });
        match listed {
            Ok(entries) => {
                let skip = usize::try_from(offset).unwrap_or(usize::MAX);
                for (index, (child, kind, name)) in entries.into_iter().enumerate().skip(skip) {
                    if reply.add(child, index as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.arrive(Op::Releasedir);
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.arrive(Op::Fsyncdir);
        match self.with_handle(fh, File::sync_all) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.arrive(Op::Statfs);
        match self
            .path(ino)
            .and_then(|p| self.pin(&p, OFlags::PATH))
            .and_then(|f| rfs::fstatvfs(f.as_fd()).map_err(errno))
        {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                u32::try_from(s.f_bsize).unwrap_or(4096),
                u32::try_from(s.f_namemax).unwrap_or(255),
                u32::try_from(s.f_frsize).unwrap_or(4096),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.arrive(Op::Access);
        let access = rfs::Access::from_bits_retain(mask.bits().cast_unsigned());
        // EACCESS: checked as the server's effective (file system) identity, which is the
        // access point's user when one is forced, not as its real uid (root).
        let checked = self.path(ino).and_then(|p| {
            let (dir, name) = self.at(&p)?;
            let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::EACCESS;
            rfs::accessat(&dir, &name, access, flags).map_err(errno)
        });
        match checked {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.arrive(Op::Create);
        let created = self.child(parent, name).and_then(|path| {
            let flags = backing_flags(flags) | OFlags::CREATE | OFlags::EXCL;
            let (dir, name) = self.at(&path)?;
            let file = open_beside_mode(&dir, &name, flags, Mode::from_raw_mode(mode & 0o7777))?;
            let (_, attr) = self.attr(&path)?;
            Ok((file, attr))
        });
        match created {
            Ok((file, attr)) => {
                let fh = self.open_handle(file);
                reply.created(&self.ttl, &attr, Generation(0), fh, FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }
}

fn stats_json(args: &Args, counts: &Counts) -> serde_json::Value {
    let ops: serde_json::Map<String, serde_json::Value> = OPS
        .iter()
        .map(|(op, name)| {
            let n = counts[*op as usize].load(Ordering::Relaxed);
            ((*name).to_owned(), n.into())
        })
        .collect();
    let total: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    serde_json::json!({
        "latency_ms": args.latency.as_secs_f64() * 1000.0,
        "cache_secs": args.cache.as_secs_f64(),
        "total": total,
        "ops": ops,
    })
}

fn run(args: &Args) -> io::Result<()> {
    // Modes arrive already masked by the caller's umask; pass them through unchanged.
    rustix::process::umask(Mode::empty());
    let counts: Counts = Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
    let fs = EfsLatency::new(&args.backing, args.latency, args.cache, Arc::clone(&counts))?;
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("efs-latency".into()),
        MountOption::Subtype("efs-latency".into()),
        // No `default_permissions`: the kernel would fetch a directory's attributes
        // again after every entry created in it, a round trip an NFS client saves by
        // taking them from the reply. The server checks permissions itself by making
        // each operation as its own identity: root, or the access point's user.
        // Unmounted by fusermount3 should this process die.
        MountOption::AutoUnmount,
        MountOption::Suid,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(args.threads);
    // A cloned /dev/fuse descriptor is opened per serving thread, which an access point's
    // user may not do: it shares the one the mount made.
    config.clone_fd = args.identity.is_none();
    // Opened before an access point's identity is taken, which may not write there.
    let stats_file = args.stats.as_deref().map(File::create).transpose()?;
    let session = Session::new(fs, &args.mountpoint, &config)?;
    if let Some(identity) = &args.identity {
        become_identity(identity)?;
    }
    let mut stdout = io::stdout();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    session.run()?;
    let stats = serde_json::to_string(&stats_json(args, &counts))?;
    match stats_file {
        Some(mut file) => writeln!(file, "{stats}"),
        None => writeln!(stdout, "{stats}"),
    }
}

/// Drops root for the access point's user for good, before the serving threads start (a
/// thread inherits the identity of the thread that makes it, and Linux keeps identity per
/// thread). Groups first: after the uid changes there is no right left to set them.
fn become_identity(identity: &Identity) -> io::Result<()> {
    use rustix::thread::{set_thread_gid, set_thread_groups, set_thread_uid};
    let groups: Vec<rfs::Gid> = identity
        .secondary_gids
        .iter()
        .map(|g| rfs::Gid::from_raw(*g))
        .collect();
    set_thread_groups(&groups)?;
    set_thread_gid(rfs::Gid::from_raw(identity.gid))?;
    set_thread_uid(rfs::Uid::from_raw(identity.uid))?;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("efs-latency: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "efs-latency: {} on {}: {err}",
                args.backing.display(),
                args.mountpoint.display()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn access_point_identity_is_parsed() {
        let args = parse(&[
            "--as-uid",
            "1001",
            "--as-gid",
            "1002",
            "--secondary-gids",
            "5,6",
            "/",
            "/mnt",
        ])
        .expect("valid");
        assert_eq!(
            args.identity,
            Some(Identity {
                uid: 1001,
                gid: 1002,
                secondary_gids: vec![5, 6]
            })
        );
        assert_eq!(parse(&["/", "/mnt"]).expect("valid").identity, None);
    }

    #[test]
    fn identity_errors_name_the_option() {
        let cases: [(&[&str], &str); 4] = [
            (
                &["--as-uid", "1001", "/", "/mnt"],
                "--as-uid and --as-gid go together",
            ),
            (
                &["--as-gid", "1001", "/", "/mnt"],
                "--as-uid and --as-gid go together",
            ),
            (
                &["--secondary-gids", "5", "/", "/mnt"],
                "--secondary-gids needs both",
            ),
            (
                &["--as-uid", "x", "--as-gid", "1", "/", "/mnt"],
                "--as-uid expects a numeric id",
            ),
        ];
        for (args, expected) in cases {
            let err = parse(args).err().unwrap_or_default();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }
}
