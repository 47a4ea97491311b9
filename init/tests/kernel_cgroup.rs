//! cgroup.rs with real processes on this host's cgroupfs (hybrid here: v1 controllers plus a
//! controller-less v2 tree; the v1-only and controller-less-v2 layouts are exercised through
//! `Hierarchies`). Needs root; each test works below its own `colony-test-<pid>-<n>` and
//! removes it, even when an assertion fails.

mod kernel_common;

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use colony_init::core::ExitStatus;
use colony_init::kernel::cgroup::{Cgroups, Hierarchies, Layout, UnitCgroup};
use colony_init::kernel::creds::Creds;
use colony_init::kernel::spawn;
use kernel_common::*;
use units::model::Resources;

use colony_integration::skip_or_fail;

static N: AtomicUsize = AtomicUsize::new(0);

/// colony's cgroups for one test; removed on drop.
struct Fixture {
    cgs: Cgroups,
}

impl Fixture {
    fn new(which: Hierarchies) -> Option<Fixture> {
        if !is_root() {
            skip_or_fail!("skipped: needs root");
            return None;
        }
        let name = format!(
            "colony-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        match Cgroups::setup_with(&name, which).expect("setup") {
            Some(cgs) => Some(Fixture { cgs }),
            None => {
                skip_or_fail!("skipped: no writable cgroupfs");
                None
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cgs.cleanup();
    }
}

/// A unit's cgroup that is killed, waited for and removed on drop.
struct Guard(UnitCgroup);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let end = Instant::now() + Duration::from_secs(5);
        while !self.0.is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.remove();
    }
}

fn procs_of(cg: &UnitCgroup) -> Vec<i32> {
    let dir = cg
        .dir("")
        .or_else(|| cg.dir("pids"))
        .expect("a tracking dir");
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Waits for `populated 0` through inotify on cgroup.events (no polling), with a bound.
fn wait_empty_inotify(cg: &UnitCgroup, limit: Duration) {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let events = cg.events_file().expect("v2 events file");
    let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).unwrap();
    ino.add_watch(&events, AddWatchFlags::IN_MODIFY).unwrap();
    let end = Instant::now() + limit;
    while !cg.is_empty() {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "cgroup never became empty");
        let mut pfd = [nix::poll::PollFd::new(
            ino.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = left.as_millis().min(10_000) as u16;
        nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)).unwrap();
        let _ = ino.read_events();
    }
}

/// Every hierarchy the unit uses shows its cgroup in the child's /proc/self/cgroup.
fn assert_placed(out: &str, cg: &UnitCgroup, suffix: &str) {
    let lines: Vec<&str> = out.lines().collect();
    if cg.events_file().is_some() {
        assert!(
            lines.contains(&format!("0::{}", cg.path()).as_str()),
            "{out}"
        );
        assert!(cg.path().ends_with(suffix));
    }
    for ctrl in ["memory", "pids", "cpu", "cpuacct", "freezer"] {
        if cg
            .dir(ctrl)
            .is_some_and(|d| !d.starts_with("/sys/fs/cgroup/unified"))
        {
            let line = lines
                .iter()
                .find(|l| {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|c| c == ctrl))
                })
                .unwrap_or_else(|| panic!("no {ctrl} line in {out}"));
            assert!(line.ends_with(suffix), "{ctrl}: {line}");
        }
    }
}

fn check_placement(which: Hierarchies) {
    let Some(fx) = Fixture::new(which) else {
        return;
    };
    let (cg, warnings) = fx.cgs.unit("placed", &Resources::default()).unwrap();
    let cg = Guard(cg);
    assert!(warnings.is_empty(), "{warnings:?}");
    let (st, out) = run(
        &["cat", "/proc/self/cgroup"],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
    );
    assert_eq!(st, ExitStatus::Code(0));
    assert_placed(&out, &cg.0, &format!("/{}/placed", fx.cgs.name()));
    if which == Hierarchies::V2Only {
        assert!(matches!(
            cg.0.open_placement().unwrap().placement(),
            spawn::Placement::CloneInto(_)
        ));
    }
    if which == Hierarchies::V1Only {
        assert!(matches!(
            cg.0.open_placement().unwrap().placement(),
            spawn::Placement::Procs(_)
        ));
        assert!(cg.0.events_file().is_none());
    }
}

#[test]
fn child_is_in_its_cgroup_before_exec() {
    check_placement(Hierarchies::Auto);
}

#[test]
fn child_is_in_its_cgroup_before_exec_v1_only() {
    check_placement(Hierarchies::V1Only);
}

#[test]
fn child_is_in_its_cgroup_before_exec_v2_only() {
    check_placement(Hierarchies::V2Only);
}

#[test]
fn host_layout_is_detected() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let has_v1_memory = mi
        .lines()
        .any(|l| l.contains(" - cgroup ") && l.contains("memory"));
    let has_v2 = mi.lines().any(|l| l.contains(" - cgroup2 "));
    let expect = match (has_v2, has_v1_memory) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::V2,
        _ => Layout::V1,
    };
    assert_eq!(fx.cgs.layout(), expect, "{}", fx.cgs.describe());
}

#[test]
fn limits_are_written() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let res = Resources {
        memory_max: Some(64 << 20),
        memory_high: Some(48 << 20),
        cpu_max: Some(50),
        cpu_weight: Some(200),
        tasks_max: Some(7),
    };
    let (cg, warnings) = fx.cgs.unit("limited", &res).unwrap();
    let cg = Guard(cg);
    assert!(warnings.is_empty(), "{warnings:?}");
    let read = |c: &str, f: &str| {
        std::fs::read_to_string(cg.0.dir(c).unwrap().join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("pids", "pids.max"), "7");
    if fx.cgs.layout() == Layout::V2 {
        assert_eq!(read("memory", "memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("memory", "memory.high"), (48u64 << 20).to_string());
        assert_eq!(read("cpu", "cpu.max"), "50000 100000");
        assert_eq!(read("cpu", "cpu.weight"), "200");
    } else {
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            read("memory", "memory.soft_limit_in_bytes"),
            (48u64 << 20).to_string()
        );
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu", "cpu.shares"), "2048");
    }
    // The same unit again without limits: nothing of the old ones stays.
    let (again, _) = fx.cgs.unit("limited", &Resources::default()).unwrap();
    match again.dir("pids") {
        // Hybrid: tasks are counted in v2, so no limit means no v1 pids directory, and the
        // old one (with its limit) is gone.
        None => assert!(!cg.0.dir("pids").unwrap().exists()),
        Some(_) => assert_eq!(read("pids", "pids.max"), "max"),
    }
    if fx.cgs.layout() != Layout::V2 {
        match again.dir("cpu") {
            // Hybrid: CPU time comes from v2, so without a CPU limit there is no v1 cpu
            // directory, and the old one (with its quota) is gone.
            None => assert!(!cg.0.dir("cpu").unwrap().exists()),
            Some(_) => {
                assert_eq!(read("cpu", "cpu.cfs_quota_us"), "-1");
                assert_eq!(read("cpu", "cpu.shares"), "1024");
            }
        }
    }
    drop(again);
}

#[test]
fn absent_controllers_are_warnings() {
    // This host's v2 tree has no memory/pids/cpu controller: every limit is a warning.
    let Some(fx) = Fixture::new(Hierarchies::V2Only) else {
        return;
    };
    let have =
        std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    if ["memory", "pids", "cpu"].iter().any(|c| have.contains(c)) {
        eprintln!("skipped: the v2 tree has controllers here");
        return;
    }
    let res = Resources {
        memory_max: Some(1 << 30),
        memory_high: None,
        cpu_max: Some(50),
        cpu_weight: None,
        tasks_max: Some(10),
    };
    let (cg, warnings) = fx.cgs.unit("warned", &res).unwrap();
    let _cg = Guard(cg);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for key in ["memory_max", "cpu_max", "tasks_max"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(key) && w.contains("not enforced")),
            "{key}: {warnings:?}"
        );
    }
}

#[test]
fn tasks_max_stops_a_fork_loop() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let res = Resources {
        tasks_max: Some(5),
        ..Resources::default()
    };
    let (cg, _) = fx.cgs.unit("forky", &res).unwrap();
    let cg = Guard(cg);
    let (s, mut out) = spawn_captured(
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; echo done; wait",
        ],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
        false,
    )
    .unwrap();
    let pids_dir = cg.0.dir("pids").unwrap().to_owned();
    let max_hits = || {
        std::fs::read_to_string(pids_dir.join("pids.events"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("max ").map(|v| v.trim().parse::<u64>()))
            })
            .and_then(|r| r.ok())
            .unwrap_or(0)
    };
    wait_until("pids.events max", Duration::from_secs(10), || {
        max_hits() > 0
    });
    assert!(cg.0.stats().tasks.unwrap() <= 5);
    cg.0.kill().unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert!(text.contains("fork"), "{text}");
    // dash gives up with exit 2 on a failed fork, or dies in the kill.
    let st = spawn::wait(s.pidfd.as_fd()).unwrap();
    assert!(
        st == ExitStatus::Code(2) || st == ExitStatus::Signal(libc::SIGKILL),
        "{st:?}"
    );
}

#[test]
fn memory_max_oom_kills_a_hog() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let res = Resources {
        memory_max: Some(32 << 20),
        ..Resources::default()
    };
    let (cg, _) = fx.cgs.unit("hog", &res).unwrap();
    let cg = Guard(cg);
    assert_eq!(cg.0.oom_kills(), 0);
    // The shell itself holds 256 MB in a variable (a `head -c` hog), far above 32 MB.
    let (st, _out) = run(
        &[
            "sh",
            "-c",
            "x=$(head -c 268435456 /dev/zero | tr '\\000' a); echo ${#x}",
        ],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
    );
    assert_eq!(st, ExitStatus::Signal(libc::SIGKILL));
    assert!(cg.0.oom_kills() > 0);
}

#[test]
fn stats_show_memory_cpu_and_tasks() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let (cg, _) = fx.cgs.unit("busy", &Resources::default()).unwrap();
    let cg = Guard(cg);
    let (s, _out) = spawn_captured(
        &[
            "sh",
            "-c",
            "x=$(head -c 8000000 /dev/zero | tr '\\000' a); sleep 30 & while :; do :; done",
        ],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
        false,
    )
    .unwrap();
    wait_until("stats", Duration::from_secs(20), || {
        let st = cg.0.stats();
        st.memory_bytes.unwrap_or(0) > 4_000_000
            && st.cpu_usec.unwrap_or(0) > 50_000
            && st.tasks.unwrap_or(0) >= 2
    });
    assert!(!cg.0.is_empty());
    cg.0.kill().unwrap();
    assert_eq!(
        spawn::wait(s.pidfd.as_fd()).unwrap(),
        ExitStatus::Signal(libc::SIGKILL)
    );
}

/// The stat files are held open per start; every start makes the unit's directories afresh,
/// so the figures after a restart are the new cgroup's (fresh counters), not the old one's,
/// and they follow the new processes live.
fn stats_follow_a_restart(which: Hierarchies) {
    let Some(fx) = Fixture::new(which) else {
        return;
    };
    let (cg1, _) = fx.cgs.unit("again", &Resources::default()).unwrap();
    let first_dir = cg1.dir("").or(cg1.dir("pids")).unwrap().to_owned();
    assert!(cg1.held_stat_files() >= 1, "no stat file held: {cg1:?}");
    let (s, _out) = spawn_captured(
        &[
            "sh",
            "-c",
            "x=$(head -c 8000000 /dev/zero | tr '\\000' a); sleep 30 & while :; do :; done",
        ],
        &Creds::default(),
        cg1.open_placement().unwrap().placement(),
        false,
    )
    .unwrap();
    let busy = |st: colony_init::kernel::cgroup::CgroupStats| {
        st.memory_bytes.is_none_or(|m| m > 4_000_000)
            && st.cpu_usec.is_none_or(|c| c > 50_000)
            && st.tasks.is_none_or(|t| t >= 2)
    };
    wait_until("the first run's figures", Duration::from_secs(20), || {
        busy(cg1.stats())
    });
    let before = cg1.stats();
    cg1.kill().unwrap();
    spawn::wait(s.pidfd.as_fd()).unwrap();
    wait_until("the first run to empty", Duration::from_secs(10), || {
        cg1.is_empty()
    });
    // Restart: the new cgroup is made while the old one (and its held files) still
    // exists, as in the loop if it kept it.
    let (cg2, _) = fx.cgs.unit("again", &Resources::default()).unwrap();
    let cg2 = Guard(cg2);
    drop(cg1);
    assert_eq!(cg2.0.dir("").or(cg2.0.dir("pids")).unwrap(), first_dir);
    let (s2, _out2) = spawn_captured(
        &["sleep", "30"],
        &Creds::default(),
        cg2.0.open_placement().unwrap().placement(),
        false,
    )
    .unwrap();
    let st = cg2.0.stats();
    assert_eq!(
        st.tasks.is_some(),
        before.tasks.is_some(),
        "{st:?} {before:?}"
    );
    assert_eq!(st.cpu_usec.is_some(), before.cpu_usec.is_some());
    assert_eq!(st.memory_bytes.is_some(), before.memory_bytes.is_some());
    if let Some(t) = st.tasks {
        assert_eq!(t, 1, "only the new run's one process: {st:?}");
    }
    if let (Some(now), Some(old)) = (st.cpu_usec, before.cpu_usec) {
        assert!(now < 50_000 && now < old, "a fresh counter: {now} vs {old}");
    }
    if let Some(m) = st.memory_bytes {
        assert!(m < 4_000_000, "a fresh counter: {m}");
    }
    // Live: a second process of the new run shows at once.
    let (s3, _out3) = spawn_captured(
        &["sleep", "30"],
        &Creds::default(),
        cg2.0.open_placement().unwrap().placement(),
        false,
    )
    .unwrap();
    if st.tasks.is_some() {
        assert_eq!(cg2.0.stats().tasks, Some(2));
    }
    cg2.0.kill().unwrap();
    for p in [&s2, &s3] {
        assert_eq!(
            spawn::wait(p.pidfd.as_fd()).unwrap(),
            ExitStatus::Signal(libc::SIGKILL)
        );
    }
}

#[test]
fn stats_follow_a_restart_into_a_fresh_cgroup() {
    stats_follow_a_restart(Hierarchies::Auto);
}

#[test]
fn stats_follow_a_restart_into_a_fresh_cgroup_v1_only() {
    stats_follow_a_restart(Hierarchies::V1Only);
}

fn setsid_daemon_dies(which: Hierarchies) {
    let Some(fx) = Fixture::new(which) else {
        return;
    };
    let (cg, _) = fx.cgs.unit("daemon", &Resources::default()).unwrap();
    let cg = Guard(cg);
    let (s, _out) = spawn_captured(
        &["sh", "-c", "setsid sleep 1000 & sleep 1000"],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
        true,
    )
    .unwrap();
    // The setsid'd one leaves our session (once setsid has run).
    let escaped = || {
        procs_of(&cg.0).iter().any(|&p| {
            nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(p)))
                .is_ok_and(|sid| sid.as_raw() != s.pid)
        })
    };
    wait_until(
        "a process in another session",
        Duration::from_secs(10),
        escaped,
    );
    assert!(procs_of(&cg.0).len() >= 3);
    cg.0.kill().unwrap();
    if cg.0.events_file().is_some() {
        wait_empty_inotify(&cg.0, Duration::from_secs(10));
    }
    // v1 only: kill() itself returns once cgroup.procs is empty.
    assert!(cg.0.is_empty());
    assert_eq!(
        spawn::wait(s.pidfd.as_fd()).unwrap(),
        ExitStatus::Signal(libc::SIGKILL)
    );
    cg.0.remove().unwrap();
}

#[test]
fn setsid_daemon_dies_with_the_unit() {
    setsid_daemon_dies(Hierarchies::Auto);
}

#[test]
fn setsid_daemon_dies_with_the_unit_v1_only() {
    setsid_daemon_dies(Hierarchies::V1Only);
}

#[test]
fn exec_failure_leaves_the_cgroup_empty_and_removable() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let (cg, _) = fx.cgs.unit("broken", &Resources::default()).unwrap();
    let e = spawn_captured(
        &["/nonexistent/prog"],
        &Creds::default(),
        cg.open_placement().unwrap().placement(),
        false,
    )
    .unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT));
    assert!(cg.is_empty());
    cg.remove().unwrap();
    assert!(!cg.dir("").or(cg.dir("pids")).unwrap().exists());
}

#[test]
fn cleanup_removes_everything() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let (a, _) = fx.cgs.unit("a", &Resources::default()).unwrap();
    let (_b, _) = fx.cgs.unit("b", &Resources::default()).unwrap();
    let dirs: Vec<_> = ["", "memory", "pids", "cpu"]
        .iter()
        .filter_map(|c| a.dir(c).map(|d| d.parent().unwrap().to_owned()))
        .collect();
    assert!(!dirs.is_empty());
    assert!(dirs.iter().all(|d| d.exists()));
    fx.cgs.cleanup();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn fork_fallback_places_and_reports_too() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let (cg, _) = fx.cgs.unit("forked", &Resources::default()).unwrap();
    let cg = Guard(cg);
    let argv = cstrings(&["cat", "/proc/self/cgroup"]);
    let envp = env();
    let creds = Creds::default();
    let (r, w) = pipe();
    let fds = cg.0.open_placement().unwrap();
    let req = spawn::SpawnRequest {
        argv: &argv,
        envp: &envp,
        cwd: None,
        creds: &creds,
        stdout: Some(w.as_fd()),
        stderr: None,
        placement: fds.placement(),
        new_process_group: false,
        sandbox: None,
        extras: None,
    };
    let s = spawn::spawn_with_fork(&req).unwrap();
    drop(w);
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert_eq!(spawn::wait(s.pidfd.as_fd()).unwrap(), ExitStatus::Code(0));
    assert_placed(&out, &cg.0, &format!("/{}/forked", fx.cgs.name()));

    let bad = cstrings(&["/nonexistent/prog"]);
    let req = spawn::SpawnRequest {
        argv: &bad,
        envp: &envp,
        cwd: None,
        creds: &creds,
        stdout: None,
        stderr: None,
        placement: fds.placement(),
        new_process_group: false,
        sandbox: None,
        extras: None,
    };
    let e = spawn::spawn_with_fork(&req).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT));
}

/// Runs this test binary's `test` in a private mount namespace after `prep` (a shell script),
/// with COLONY_TEST_INNER set; returns its output.
fn in_mount_ns(test: &str, prep: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let script = format!("{prep} && exec \"$0\" --exact {test} --nocapture");
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(&exe)
        .env("COLONY_TEST_INNER", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    text
}

#[test]
fn no_cgroupfs_means_no_cgroups() {
    if std::env::var_os("COLONY_TEST_INNER").is_some() {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mi.contains(" - cgroup"), "{mi}");
        assert!(Cgroups::setup("colony-test-none").unwrap().is_none());
        return;
    }
    if !is_root() {
        skip_or_fail!("skipped: needs root");
        return;
    }
    in_mount_ns(
        "no_cgroupfs_means_no_cgroups",
        "grep -q ' /sys/fs/cgroup ' /proc/self/mountinfo && umount -R /sys/fs/cgroup",
    );
}

#[test]
fn read_only_cgroupfs_means_no_cgroups() {
    if std::env::var_os("COLONY_TEST_INNER").is_some() {
        assert!(Cgroups::setup("colony-test-ro").unwrap().is_none());
        return;
    }
    if !is_root() {
        skip_or_fail!("skipped: needs root");
        return;
    }
    // Every cgroup mount made read-only in this namespace only.
    in_mount_ns(
        "read_only_cgroupfs_means_no_cgroups",
        "for m in $(awk '$0 ~ / - cgroup2? / {print $5}' /proc/self/mountinfo); do \
         mount -o remount,bind,ro \"$m\" || exit 1; done",
    );
}

#[test]
fn non_root_gets_no_cgroups() {
    if !is_root() {
        assert!(Cgroups::setup("colony-test-user").unwrap().is_none());
        return;
    }
    // Run this very test as nobody, through our own spawn.
    let exe = std::env::current_exe().unwrap();
    let mut u = unit("x", &[]);
    u.identity.user = Some(units::model::User {
        name: "nobody".into(),
        uid: 65534,
        primary_gid: 65534,
    });
    u.identity.supplementary_groups = Some(vec![]);
    let creds = Creds::for_unit(&u).unwrap();
    let (st, out) = run(
        &[
            exe.to_str().unwrap(),
            "--exact",
            "non_root_gets_no_cgroups",
            "--nocapture",
        ],
        &creds,
        spawn::Placement::None,
    );
    assert_eq!(st, ExitStatus::Code(0), "{out}");
    assert!(out.contains("1 passed"), "{out}");
}

/// A restart after a clean exit reuses the unit's directories (no cgroup.kill was needed, so
/// the kernel keeps cloning into it normally) with the CPU time counted afresh; a cgroup
/// that had to be killed, or new limits, make the next start take fresh directories.
fn check_reuse(which: Hierarchies) {
    let Some(fx) = Fixture::new(which) else {
        return;
    };
    let (cg, _) = fx.cgs.unit("reuse", &Resources::default()).unwrap();
    let mut cg = Guard(cg);
    let burn = "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done";
    let (st, _) = run(
        &["sh", "-c", burn],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
    );
    assert_eq!(st, ExitStatus::Code(0));
    wait_until("the first run to empty", Duration::from_secs(10), || {
        cg.0.is_empty()
    });
    let used = cg.0.stats().cpu_usec;
    // The exit path kills leftovers; with none, nothing is written.
    cg.0.kill().unwrap();
    assert!(
        !cg.0.reusable(&Resources {
            tasks_max: Some(10),
            ..Resources::default()
        }),
        "new limits need fresh directories"
    );
    assert!(cg.0.reusable(&Resources::default()), "{cg:?}", cg = cg.0);
    let (s, _out) = spawn_captured(
        &["sleep", "30"],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
        false,
    )
    .unwrap();
    assert_eq!(procs_of(&cg.0), vec![s.pid], "placed in the reused cgroup");
    if let (Some(now), Some(before)) = (cg.0.stats().cpu_usec, used) {
        assert!(now < before, "CPU time counts afresh: {now} vs {before}");
    }
    // Alive: not killed on arrival as a child of a once-killed cgroup would be.
    let mut pfd = [nix::poll::PollFd::new(
        s.pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    assert_eq!(
        nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(200u16)).unwrap(),
        0,
        "the second run died"
    );
    cg.0.kill().unwrap();
    assert_eq!(
        spawn::wait(s.pidfd.as_fd()).unwrap(),
        ExitStatus::Signal(libc::SIGKILL)
    );
    wait_until("the second run to empty", Duration::from_secs(10), || {
        cg.0.is_empty()
    });
    assert!(
        !cg.0.reusable(&Resources::default()),
        "a killed cgroup is never reused"
    );
}

#[test]
fn clean_exit_reuses_the_cgroup() {
    check_reuse(Hierarchies::Auto);
}

#[test]
fn clean_exit_reuses_the_cgroup_v1_only() {
    check_reuse(Hierarchies::V1Only);
}

#[test]
fn a_cgroup_removed_behind_our_back_is_not_reused() {
    let Some(fx) = Fixture::new(Hierarchies::Auto) else {
        return;
    };
    let (cg, _) = fx.cgs.unit("gone", &Resources::default()).unwrap();
    let mut cg = Guard(cg);
    let (st, _) = run(
        &["true"],
        &Creds::default(),
        cg.0.open_placement().unwrap().placement(),
    );
    assert_eq!(st, ExitStatus::Code(0));
    wait_until("the run to empty", Duration::from_secs(10), || {
        cg.0.is_empty()
    });
    let dir =
        cg.0.dir("")
            .or_else(|| cg.0.dir("memory"))
            .unwrap()
            .to_owned();
    std::fs::remove_dir(&dir).unwrap();
    assert!(!cg.0.reusable(&Resources::default()));
}
