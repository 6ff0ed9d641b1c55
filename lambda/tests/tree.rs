//! The reconciler on real directories: owners, modes, idempotence, no clobbering, and
//! refusal to follow symlinks out of the mount. Runs as root (owners are set), under a
//! restrictive umask (modes must be set explicitly, not left to `mkdir`).

use ce_efs_tree::spec::TreeSpec;
use ce_efs_tree::tree::{apply, TreeError, TreeReport};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary directory holding `mnt` (the mount) and `outside` (what escapes aim at).
struct Sandbox {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
    outside: PathBuf,
}

fn sandbox() -> Sandbox {
    assert!(
        rustix::process::geteuid().is_root(),
        "the tree tests set owners and must run as root"
    );
    // Every test sets the same value, so running them in parallel threads is harmless.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("mnt");
    let outside = dir.path().join("outside");
    fs::create_dir(&mnt).expect("mnt");
    fs::create_dir(&outside).expect("outside");
    fs::write(outside.join("target.conf"), "outside content").expect("target");
    chmod(&outside, 0o755);
    chmod(&outside.join("target.conf"), 0o644);
    Sandbox {
        _dir: dir,
        mnt,
        outside,
    }
}

fn spec(props: Value) -> TreeSpec {
    TreeSpec::from_properties(&props).expect("valid spec")
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &Path, owner: u32, group: u32) {
    std::os::unix::fs::chown(path, Some(owner), Some(group)).expect("chown");
}

/// (mode bits, owner, group) of `path`, not following a symlink.
fn attrs(path: &Path) -> (u32, u32, u32) {
    let meta = fs::symlink_metadata(path).expect("metadata");
    (meta.mode() & 0o7777, meta.uid(), meta.gid())
}

/// Everything observable about a tree, symlinks not followed: type, mode, owner, inode,
/// size, content, mtime and ctime (to the nanosecond) of every entry.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let meta = fs::symlink_metadata(dir).expect("metadata");
        let content = if meta.is_file() {
            fs::read_to_string(dir).expect("read")
        } else if meta.file_type().is_symlink() {
            fs::read_link(dir).expect("readlink").display().to_string()
        } else {
            String::new()
        };
        out.insert(
            dir.strip_prefix(root).expect("inside").to_owned(),
            format!(
                "mode={:o} uid={} gid={} ino={} size={} mtime={}.{} ctime={}.{} content={content:?}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.ino(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec()
            ),
        );
        if meta.is_dir() {
            for entry in fs::read_dir(dir).expect("read_dir") {
                walk(root, &entry.expect("entry").path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn ce_tree() -> TreeSpec {
    spec(json!({
        "Directories": [
            { "Path": "data/mongo-data", "Owner": "1001", "Group": "1001", "Mode": "0750" },
            { "Path": "data/rabbitmq", "Owner": 999, "Group": 999, "Mode": "2770" },
            { "Path": "config" },
        ],
        "Files": [
            { "Path": "data/rabbitmq/custom.conf", "Content": "consumer_timeout = 86400000\n",
              "Owner": "1001", "Group": "1001", "Mode": "0640", "Overwrite": "false" },
            { "Path": "config/always.conf", "Content": "a = 1\n", "Overwrite": true },
        ],
    }))
}

#[test]
fn builds_the_tree_with_declared_owners_and_modes() {
    let s = sandbox();
    let report = apply(&s.mnt, &ce_tree()).expect("apply");
    assert_eq!(
        report,
        TreeReport {
            directories_created: 4,
            files_written: 2
        }
    );
    let m = &s.mnt;
    assert_eq!(attrs(&m.join("data")), (0o755, 0, 0), "undeclared parent");
    assert_eq!(attrs(&m.join("data/mongo-data")), (0o750, 1001, 1001));
    assert_eq!(attrs(&m.join("data/rabbitmq")), (0o2770, 999, 999));
    assert_eq!(attrs(&m.join("config")), (0o755, 0, 0), "declared defaults");
    assert_eq!(
        attrs(&m.join("data/rabbitmq/custom.conf")),
        (0o640, 1001, 1001)
    );
    assert_eq!(attrs(&m.join("config/always.conf")), (0o644, 0, 0));
    assert_eq!(
        fs::read_to_string(m.join("data/rabbitmq/custom.conf")).expect("read"),
        "consumer_timeout = 86400000\n"
    );
    assert_eq!(
        names(&m.join("data/rabbitmq")),
        ["custom.conf"],
        "no temp file left"
    );
    assert_eq!(
        names(&m.join("config")),
        ["always.conf"],
        "no temp file left"
    );
}

#[test]
fn report_serializes_for_cloudformation_data() {
    let report = TreeReport {
        directories_created: 3,
        files_written: 1,
    };
    assert_eq!(
        serde_json::to_value(report).expect("json"),
        json!({ "DirectoriesCreated": 3, "FilesWritten": 1 })
    );
}

#[test]
fn a_second_apply_changes_nothing() {
    let s = sandbox();
    let tree = ce_tree();
    apply(&s.mnt, &tree).expect("first apply");
    let before = snapshot(&s.mnt);
    let report = apply(&s.mnt, &tree).expect("second apply");
    assert_eq!(report, TreeReport::default());
    assert_eq!(snapshot(&s.mnt), before);
}

#[test]
fn existing_undeclared_parents_are_left_alone() {
    let s = sandbox();
    let data = s.mnt.join("data");
    fs::create_dir(&data).expect("mkdir");
    chmod(&data, 0o700);
    chown(&data, 5, 6);
    fs::write(data.join("operator-notes"), "keep").expect("write");
    let before = snapshot(&data);

    let report = apply(
        &s.mnt,
        &spec(json!({ "Directories": [{ "Path": "data/new/deeper", "Mode": "0700" }] })),
    )
    .expect("apply");

    assert_eq!(report.directories_created, 2);
    assert_eq!(attrs(&data), (0o700, 5, 6));
    let after = snapshot(&data);
    assert_eq!(
        after.get(Path::new("operator-notes")),
        before.get(Path::new("operator-notes"))
    );
    assert_eq!(attrs(&data.join("new")), (0o755, 0, 0));
    assert_eq!(attrs(&data.join("new/deeper")), (0o700, 0, 0));
}

#[test]
fn existing_declared_directories_get_owner_and_mode_without_being_recreated() {
    let s = sandbox();
    let dir = s.mnt.join("mongo");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("db"), "data").expect("write");
    chmod(&dir, 0o777);
    let ino = fs::metadata(&dir).expect("meta").ino();

    let report = apply(
        &s.mnt,
        &spec(json!({ "Directories": [{ "Path": "mongo", "Owner": 1001, "Group": "1001", "Mode": "0750" }] })),
    )
    .expect("apply");

    assert_eq!(report, TreeReport::default());
    assert_eq!(attrs(&dir), (0o750, 1001, 1001));
    assert_eq!(fs::metadata(&dir).expect("meta").ino(), ino);
    assert_eq!(fs::read_to_string(dir.join("db")).expect("read"), "data");
}

#[test]
fn setgid_survives_an_owner_change() {
    let s = sandbox();
    let dir = s.mnt.join("shared");
    fs::create_dir(&dir).expect("mkdir");
    chmod(&dir, 0o2750);
    let file = s.mnt.join("tool");
    fs::write(&file, "#!/bin/sh\n").expect("write");
    chmod(&file, 0o6755);

    apply(
        &s.mnt,
        &spec(json!({
            "Directories": [{ "Path": "shared", "Owner": 1001, "Group": 1002, "Mode": "2750" }],
            "Files": [{ "Path": "tool", "Content": "", "Owner": 1001, "Group": 1002, "Mode": "6755" }],
        })),
    )
    .expect("apply");

    assert_eq!(attrs(&dir), (0o2750, 1001, 1002));
    assert_eq!(attrs(&file), (0o6755, 1001, 1002));
}

#[test]
fn an_edited_seed_file_keeps_its_content_when_overwrite_is_false() {
    let s = sandbox();
    fs::create_dir(s.mnt.join("rabbitmq")).expect("mkdir");
    let conf = s.mnt.join("rabbitmq/custom.conf");
    fs::write(&conf, "edited by the operator\n").expect("write");
    chmod(&conf, 0o666);
    let ino = fs::metadata(&conf).expect("meta").ino();

    let report = apply(
        &s.mnt,
        &spec(
            json!({ "Files": [{ "Path": "rabbitmq/custom.conf", "Content": "seed\n",
                                  "Owner": 1001, "Group": 1001, "Mode": "0640" }] }),
        ),
    )
    .expect("apply");

    assert_eq!(report, TreeReport::default());
    assert_eq!(
        fs::read_to_string(&conf).expect("read"),
        "edited by the operator\n"
    );
    assert_eq!(
        attrs(&conf),
        (0o640, 1001, 1001),
        "owner and mode reconciled"
    );
    assert_eq!(fs::metadata(&conf).expect("meta").ino(), ino);
}

#[test]
fn overwrite_true_replaces_different_content_atomically() {
    let s = sandbox();
    let conf = s.mnt.join("custom.conf");
    fs::write(&conf, "old content that is longer than the new one\n").expect("write");
    let old_ino = fs::metadata(&conf).expect("meta").ino();
    let tree = spec(
        json!({ "Files": [{ "Path": "custom.conf", "Content": "new\n",
                                         "Mode": "0600", "Owner": 7, "Overwrite": "true" }] }),
    );

    let report = apply(&s.mnt, &tree).expect("apply");

    assert_eq!(report.files_written, 1);
    assert_eq!(fs::read_to_string(&conf).expect("read"), "new\n");
    assert_eq!(attrs(&conf), (0o600, 7, 0));
    assert_ne!(
        fs::metadata(&conf).expect("meta").ino(),
        old_ino,
        "replaced by rename, not rewritten in place"
    );
    assert_eq!(names(&s.mnt), ["custom.conf"], "no temp file left");

    // Same content: nothing written, even though Overwrite is true.
    let before = snapshot(&s.mnt);
    assert_eq!(apply(&s.mnt, &tree).expect("again"), TreeReport::default());
    assert_eq!(snapshot(&s.mnt), before);
}

#[test]
fn overwrite_true_detects_a_longer_file_with_the_declared_prefix() {
    let s = sandbox();
    let conf = s.mnt.join("c");
    fs::write(&conf, "abc-and-more").expect("write");
    let tree = spec(json!({ "Files": [{ "Path": "c", "Content": "abc", "Overwrite": true }] }));
    assert_eq!(apply(&s.mnt, &tree).expect("apply").files_written, 1);
    assert_eq!(fs::read_to_string(&conf).expect("read"), "abc");
}

#[test]
fn empty_content_creates_an_empty_file() {
    let s = sandbox();
    let tree = spec(json!({ "Files": [{ "Path": "empty", "Content": "" }] }));
    assert_eq!(apply(&s.mnt, &tree).expect("apply").files_written, 1);
    assert_eq!(fs::read(s.mnt.join("empty")).expect("read"), b"");
}

#[test]
fn the_mount_point_itself_may_be_a_symlink() {
    let s = sandbox();
    let link = s.outside.parent().expect("parent").join("mnt-link");
    symlink(&s.mnt, &link).expect("symlink");
    let report = apply(&link, &spec(json!({ "Directories": [{ "Path": "d" }] }))).expect("apply");
    assert_eq!(report.directories_created, 1);
    assert!(s.mnt.join("d").is_dir());
}

/// Applies `tree`, expects a `Symlink` error naming `path`, and checks that neither the
/// outside directory nor the mount changed.
fn assert_refused_symlink(s: &Sandbox, tree: &TreeSpec, path: &str) {
    let outside = snapshot(&s.outside);
    let mnt = snapshot(&s.mnt);
    let err = apply(&s.mnt, tree).expect_err("a symlink must be refused");
    assert!(
        matches!(&err, TreeError::Symlink { path: p } if p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{path}: is a symbolic link; refusing to follow it")
    );
    assert_eq!(snapshot(&s.outside), outside, "outside changed");
    assert_eq!(snapshot(&s.mnt), mnt, "mount changed");
}

#[test]
fn a_symlinked_intermediate_directory_is_refused_and_nothing_is_built() {
    let s = sandbox();
    symlink(&s.outside, s.mnt.join("data")).expect("symlink");
    // "aaa" sorts first: without the check pass it would be created before the refusal.
    let tree = spec(json!({
        "Directories": [{ "Path": "aaa" }, { "Path": "data/mongo", "Owner": 1001, "Mode": "0777" }],
        "Files": [{ "Path": "data/custom.conf", "Content": "x", "Overwrite": true }],
    }));
    assert_refused_symlink(&s, &tree, "data");
}

#[test]
fn a_symlink_deeper_in_an_undeclared_parent_is_refused() {
    let s = sandbox();
    fs::create_dir_all(s.mnt.join("data/a")).expect("mkdir");
    symlink(&s.outside, s.mnt.join("data/a/b")).expect("symlink");
    let tree = spec(json!({ "Directories": [{ "Path": "data/a/b/c/d", "Mode": "0777" }] }));
    assert_refused_symlink(&s, &tree, "data/a/b");
}

#[test]
fn a_symlink_at_a_declared_directory_is_refused() {
    let s = sandbox();
    symlink(&s.outside, s.mnt.join("data")).expect("symlink");
    let tree = spec(json!({ "Directories": [{ "Path": "data", "Owner": 1001, "Mode": "0777" }] }));
    assert_refused_symlink(&s, &tree, "data");
}

#[test]
fn a_symlink_at_a_declared_file_is_refused() {
    let s = sandbox();
    fs::create_dir(s.mnt.join("conf")).expect("mkdir");
    symlink(
        s.outside.join("target.conf"),
        s.mnt.join("conf/custom.conf"),
    )
    .expect("symlink");
    for overwrite in [false, true] {
        let tree = spec(
            json!({ "Files": [{ "Path": "conf/custom.conf", "Content": "x",
                                             "Owner": 1001, "Mode": "0600", "Overwrite": overwrite }] }),
        );
        assert_refused_symlink(&s, &tree, "conf/custom.conf");
    }
}

#[test]
fn a_dangling_symlink_at_a_declared_file_is_refused() {
    let s = sandbox();
    symlink(s.outside.join("created-through-link"), s.mnt.join("seed")).expect("symlink");
    let tree = spec(json!({ "Files": [{ "Path": "seed", "Content": "x" }] }));
    assert_refused_symlink(&s, &tree, "seed");
    assert!(!s.outside.join("created-through-link").exists());
}

#[test]
fn a_hard_linked_file_is_refused() {
    let s = sandbox();
    fs::hard_link(s.outside.join("target.conf"), s.mnt.join("seed")).expect("link");
    let outside = snapshot(&s.outside);
    let tree = spec(
        json!({ "Files": [{ "Path": "seed", "Content": "x", "Owner": 1001, "Mode": "0777" }] }),
    );
    let err = apply(&s.mnt, &tree).expect_err("refused");
    assert!(
        matches!(&err, TreeError::HardLinked { path } if path == "seed"),
        "{err:?}"
    );
    assert_eq!(snapshot(&s.outside), outside);
}

#[test]
fn a_file_where_a_directory_is_declared_is_refused_before_anything_is_built() {
    let s = sandbox();
    fs::write(s.mnt.join("mongo"), "not a directory").expect("write");
    let tree = spec(json!({ "Directories": [{ "Path": "aaa" }, { "Path": "mongo" }] }));
    let before = snapshot(&s.mnt);
    let err = apply(&s.mnt, &tree).expect_err("refused");
    assert!(
        matches!(&err, TreeError::NotADirectory { path } if path == "mongo"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "mongo: exists but is not a directory");
    assert_eq!(snapshot(&s.mnt), before);
}

#[test]
fn a_file_where_a_parent_is_needed_is_refused() {
    let s = sandbox();
    fs::create_dir(s.mnt.join("data")).expect("mkdir");
    fs::write(s.mnt.join("data/rabbitmq"), "file").expect("write");
    let tree = spec(json!({ "Files": [{ "Path": "data/rabbitmq/custom.conf", "Content": "x" }] }));
    let err = apply(&s.mnt, &tree).expect_err("refused");
    assert!(
        matches!(&err, TreeError::NotADirectory { path } if path == "data/rabbitmq"),
        "{err:?}"
    );
}

#[test]
fn a_directory_where_a_file_is_declared_is_refused() {
    let s = sandbox();
    fs::create_dir(s.mnt.join("custom.conf")).expect("mkdir");
    let tree =
        spec(json!({ "Files": [{ "Path": "custom.conf", "Content": "x", "Overwrite": true }] }));
    let before = snapshot(&s.mnt);
    let err = apply(&s.mnt, &tree).expect_err("refused");
    assert!(
        matches!(&err, TreeError::NotAFile { path } if path == "custom.conf"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "custom.conf: exists but is not a regular file"
    );
    assert_eq!(snapshot(&s.mnt), before);
}

#[test]
fn a_fifo_where_a_file_is_declared_is_refused_without_blocking() {
    let s = sandbox();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.mnt.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let tree = spec(json!({ "Files": [{ "Path": "pipe", "Content": "x" }] }));
    let err = apply(&s.mnt, &tree).expect_err("refused");
    assert!(
        matches!(&err, TreeError::NotAFile { path } if path == "pipe"),
        "{err:?}"
    );
}

#[test]
fn a_missing_mount_is_reported_as_such() {
    let s = sandbox();
    let root = s.mnt.join("efs");
    let err = apply(&root, &ce_tree()).expect_err("no mount");
    assert!(
        matches!(&err, TreeError::MountMissing { root: r } if *r == root),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "mount point {} does not exist: is the EFS file system mounted?",
            root.display()
        )
    );
    assert!(!root.exists(), "the mount point must not be created");
}

#[test]
fn a_mount_point_that_is_a_file_is_reported() {
    let s = sandbox();
    let root = s.mnt.join("efs");
    fs::write(&root, "").expect("write");
    let err = apply(&root, &ce_tree()).expect_err("not a directory");
    assert!(
        matches!(err, TreeError::MountNotADirectory { .. }),
        "{err:?}"
    );
}

/// A read-only bind mount of a directory, unmounted on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    /// `None` (with the reason printed) only when this machine cannot mount at all.
    fn of(source: &Path, target: &Path) -> Option<ReadOnlyMount> {
        fs::create_dir(target).expect("mount point");
        let bind = Command::new("mount")
            .arg("--bind")
            .args([source, target])
            .output();
        match bind {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!(
                    "SKIPPED read-only mount test: `mount --bind` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            Err(err) => {
                eprintln!("SKIPPED read-only mount test: cannot run `mount`: {err}");
                return None;
            }
        }
        let mount = ReadOnlyMount(target.to_owned());
        let remount = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(target)
            .status()
            .expect("run mount");
        assert!(
            remount.success(),
            "bind mount worked but remounting read-only failed"
        );
        Some(mount)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(&self.0).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not unmount {}", self.0.display());
        }
    }
}

#[test]
fn a_read_only_mount_is_reported_with_path_and_operation() {
    let s = sandbox();
    let source = s.mnt.join("source");
    let tree = spec(json!({
        "Directories": [{ "Path": "data/mongo", "Owner": 1001, "Mode": "0750" }],
        "Files": [{ "Path": "data/custom.conf", "Content": "seed" }],
    }));
    fs::create_dir(&source).expect("source");
    apply(&source, &tree).expect("build the tree while writable");
    let target = s.outside.join("ro");
    let Some(_mount) = ReadOnlyMount::of(&source, &target) else {
        return;
    };
    assert!(
        fs::create_dir(target.join("probe")).is_err(),
        "the mount is not read-only"
    );

    // Already reconciled: a read-only mount is fine, nothing needs writing.
    assert_eq!(apply(&target, &tree).expect("no-op"), TreeReport::default());

    let cases = [
        (
            json!({ "Directories": [{ "Path": "data/mongo", "Owner": 1001, "Mode": "0700" }] }),
            "data/mongo",
            "change the mode",
        ),
        (
            json!({ "Directories": [{ "Path": "data/mongo", "Owner": 1002, "Mode": "0750" }] }),
            "data/mongo",
            "change the owner",
        ),
        (
            json!({ "Directories": [{ "Path": "data/new/dir" }] }),
            "data/new",
            "create the directory",
        ),
        (
            json!({ "Files": [{ "Path": "data/other.conf", "Content": "" }] }),
            "data/other.conf",
            "create a temporary file",
        ),
    ];
    for (props, path, op) in cases {
        let before = snapshot(&source);
        let err = apply(&target, &spec(props.clone())).expect_err("read-only");
        assert!(
            matches!(&err, TreeError::ReadOnly { path: p, op: o } if p == path && *o == op),
            "{props}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{path}: cannot {op}: the file system is read-only")
        );
        assert_eq!(snapshot(&source), before);
    }
}

/// `groups` subtrees `gNN`, each with a declared directory, eight declared subdirectories
/// two levels deep and a seed file: entries the walker handles concurrently.
fn wide_tree(groups: usize) -> TreeSpec {
    let mut directories = Vec::new();
    let mut files = Vec::new();
    for g in 0..groups {
        let base = format!("wide/g{g:02}");
        directories.push(json!({ "Path": base, "Owner": 1001, "Group": 1002, "Mode": "0750" }));
        for d in 0..8 {
            let mode = if d % 2 == 0 { "2770" } else { "0700" };
            directories.push(json!({ "Path": format!("{base}/a{d}/b"), "Owner": d, "Mode": mode }));
        }
        files.push(
            json!({ "Path": format!("{base}/a0/seed.conf"), "Content": format!("g = {g}\n"),
                           "Owner": 1001, "Group": 1001, "Mode": "0640" }),
        );
    }
    spec(json!({ "Directories": directories, "Files": files }))
}

#[test]
fn a_wide_tree_is_built_whole_and_a_second_apply_changes_nothing() {
    let s = sandbox();
    let tree = wide_tree(40);
    let report = apply(&s.mnt, &tree).expect("apply");
    // wide, 40 groups, 8 undeclared a* and 8 declared b per group.
    assert_eq!(
        report,
        TreeReport {
            directories_created: 1 + 40 * 17,
            files_written: 40
        }
    );
    for g in 0..40 {
        let base = s.mnt.join(format!("wide/g{g:02}"));
        assert_eq!(attrs(&base), (0o750, 1001, 1002), "{}", base.display());
        for d in 0..8u32 {
            let mode = if d % 2 == 0 { 0o2770 } else { 0o700 };
            assert_eq!(attrs(&base.join(format!("a{d}"))), (0o755, 0, 0));
            assert_eq!(attrs(&base.join(format!("a{d}/b"))), (mode, d, 0));
        }
        assert_eq!(
            names(&base.join("a0")),
            ["b", "seed.conf"],
            "no temp file left"
        );
        assert_eq!(
            fs::read_to_string(base.join("a0/seed.conf")).expect("read"),
            format!("g = {g}\n")
        );
    }
    let before = snapshot(&s.mnt);
    assert_eq!(apply(&s.mnt, &tree).expect("again"), TreeReport::default());
    assert_eq!(snapshot(&s.mnt), before);
}

#[test]
fn a_fault_in_one_subtree_names_it_and_nothing_is_built_in_the_others() {
    let s = sandbox();
    fs::create_dir_all(s.mnt.join("wide/g17/a3")).expect("mkdir");
    symlink(&s.outside, s.mnt.join("wide/g17/a3/b")).expect("symlink");
    assert_refused_symlink(&s, &wide_tree(40), "wide/g17/a3/b");
    assert_eq!(
        names(&s.mnt.join("wide")),
        ["g17"],
        "no other subtree built"
    );
}

#[test]
fn of_several_faults_the_first_in_path_order_is_reported_every_time() {
    let s = sandbox();
    for g in ["g05", "g20", "g33"] {
        fs::create_dir_all(s.mnt.join(format!("wide/{g}/a1"))).expect("mkdir");
        fs::write(s.mnt.join(format!("wide/{g}/a1/b")), "a file").expect("write");
    }
    let tree = wide_tree(40);
    for _ in 0..5 {
        let err = apply(&s.mnt, &tree).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "wide/g05/a1/b: exists but is not a directory"
        );
    }
}
