//! Real directories, links and owners (the ownership cases need root).

use super::*;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

const RW: OFlag = OFlag::O_RDWR;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
}

fn open(dir: &Path, create: bool) -> Result<(File, FileStat), PathError> {
    let (d, name) = split(dir).unwrap();
    let mode = create.then(|| Mode::from_bits_truncate(0o640));
    Dir::open(d, mode.map(|_| Mode::from_bits_truncate(0o755)))?.open_file(
        name,
        RW,
        mode,
        Allow::Regular,
    )
}

#[test]
fn missing_directories_and_the_file_are_created() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a/b/c/f");
    let (_, st) = open(&path, true).unwrap();
    assert_eq!(st.st_nlink, 1);
    assert!(path.is_file());
    // Without create nothing is made.
    let e = open(&tmp.path().join("x/f"), false).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOENT), "{e}");
    assert!(!tmp.path().join("x").exists());
    // A relative path starts at the working directory.
    let d = Dir::open(Path::new(""), None).unwrap();
    assert_eq!(d.path(), Path::new(""));
}

#[test]
fn a_symlink_as_the_final_component_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("secret");
    std::fs::write(&target, "secret\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = tmp.path().join("beat");
    symlink(&target, &link).unwrap();
    let e = open(&link, true).unwrap_err();
    assert!(matches!(&e, PathError::Symlink(p) if p == &link), "{e}");
    assert!(e.is_refusal());
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
        0o600
    );
}

#[test]
fn a_dangling_symlink_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("rootonly")).unwrap();
    let target = tmp.path().join("rootonly/created");
    let link = tmp.path().join("beat");
    symlink(&target, &link).unwrap();
    assert!(matches!(open(&link, true), Err(PathError::Symlink(_))));
    assert!(!target.exists());
}

#[test]
fn a_symlink_in_the_middle_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    symlink(&real, tmp.path().join("via")).unwrap();
    let e = open(&tmp.path().join("via/sub/f"), true).unwrap_err();
    assert!(
        matches!(&e, PathError::Symlink(p) if p == &tmp.path().join("via")),
        "{e}"
    );
    assert!(!real.join("sub").exists(), "nothing made through the link");
    // A `..` that could climb out is refused as such.
    let e = Dir::open(&tmp.path().join("real/../real"), None).unwrap_err();
    assert!(matches!(e, PathError::DotDot(_)), "{e}");
}

#[test]
fn a_hardlinked_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("secret");
    std::fs::write(&target, "secret\n").unwrap();
    let beat = tmp.path().join("beat");
    std::fs::hard_link(&target, &beat).unwrap();
    let e = open(&beat, true).unwrap_err();
    assert!(matches!(e, PathError::HardLinked { nlink: 2, .. }), "{e}");
}

#[test]
fn only_regular_files_or_root_devices_are_opened() {
    let tmp = tempfile::tempdir().unwrap();
    // A FIFO in the file's place neither blocks the open nor is accepted.
    let fifo = tmp.path().join("fifo");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let d = Dir::open(tmp.path(), None).unwrap();
    let e = d
        .open_file(
            OsStr::new("fifo"),
            OFlag::O_WRONLY,
            None,
            Allow::RegularOrRootDevice,
        )
        .unwrap_err();
    // ENXIO (no reader, O_NONBLOCK) or refused: never a hang.
    assert!(
        e.errno() == Some(Errno::ENXIO) || matches!(e, PathError::NotRegular { .. }),
        "{e}"
    );
    let e = d
        .open_file(OsStr::new("fifo"), OFlag::O_RDONLY, None, Allow::Regular)
        .unwrap_err();
    assert!(
        matches!(e, PathError::NotRegular { kind: "a FIFO", .. }),
        "{e}"
    );
    // /dev/null: a device root owns, for a log; not a heartbeat file.
    let dev = Dir::open(Path::new("/dev"), None).unwrap();
    let null = OsStr::new("null");
    let (f, _) = dev
        .open_file(null, OFlag::O_WRONLY, None, Allow::RegularOrRootDevice)
        .unwrap();
    let fl = OFlag::from_bits_truncate(fcntl(&f, FcntlArg::F_GETFL).unwrap());
    assert!(!fl.contains(OFlag::O_NONBLOCK), "writes block again");
    assert!(matches!(
        dev.open_file(null, OFlag::O_WRONLY, None, Allow::Regular),
        Err(PathError::NotRegular { .. })
    ));
}

#[test]
fn a_directory_of_one_user_below_another_users_is_an_unsafe_transition() {
    if !is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    let x = app.join("x");
    std::fs::create_dir_all(&x).unwrap();
    chown(&app, 1000);
    chown(&x, 1001);
    let e = open(&x.join("beat"), true).unwrap_err();
    assert!(e.is_refusal());
    assert_eq!(
        e.to_string(),
        format!(
            "unsafe path: {} is owned by uid 1000, {} by uid 1001",
            app.display(),
            x.display()
        )
    );
    assert!(!x.join("beat").exists());
    // The same for a file of another user in a user's directory.
    std::fs::write(app.join("f"), "").unwrap();
    chown(&app.join("f"), 1001);
    assert!(matches!(
        open(&app.join("f"), false),
        Err(PathError::UnsafeTransition { .. })
    ));

    // Root to a user, a user's own below, and root's below a user's are fine.
    chown(&x, 1000);
    std::fs::create_dir(x.join("r")).unwrap();
    let (_, st) = open(&x.join("r/beat"), true).unwrap();
    assert_eq!(st.st_uid, 0);
    chown(&x.join("r/beat"), 1000);
    open(&x.join("r/beat"), false).unwrap();
    assert_eq!(std::fs::metadata(x.join("r/beat")).unwrap().uid(), 1000);
}
