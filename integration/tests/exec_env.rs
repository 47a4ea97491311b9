//! A unit's `exec_env` on real processes and files: environment files, rlimits, nice and
//! OOM score (read back from /proc), managed directories (owner, mode, removal at stop),
//! credentials (mode, owner, gone after stop), working directory forms.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use colony_integration::{unique_name, wait_for, Colony, SOON};
use serde_json::Value;

fn sh(script: &str) -> String {
    format!("exec = [\"/bin/sh\", \"-c\", '''{script}''']\n")
}

fn pid_of(u: &Value) -> i32 {
    u["pid"].as_i64().unwrap_or(0) as i32
}

fn nobody() -> (u32, u32) {
    let text = std::fs::read_to_string("/etc/passwd").unwrap();
    let f: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a nobody user")
        .split(':')
        .collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

/// `(soft, hard)` of a line of /proc/PID/limits, as text.
fn limit(pid: i32, what: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text.lines().find(|l| l.starts_with(what)).unwrap();
    let w: Vec<&str> = line[25..].split_whitespace().collect();
    (w[0].to_string(), w[1].to_string())
}

/// `out` made for `uid` to write, in a directory it can reach.
fn writable_by(c: &Colony, out: &Path, uid: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(c.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::File::create(out).unwrap();
    std::os::unix::fs::chown(out, Some(uid), None).unwrap();
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn environment_files_limits_nice_and_oom_score_reach_the_process() {
    let c = Colony::new();
    let envf = c.dir.path().join("app.env");
    std::fs::write(
        &envf,
        "# defaults\nFROM_FILE=one\nexport QUOTED=\"a b\"\nOVER=file\n",
    )
    .unwrap();
    let out = c.dir.path().join("env.out");
    c.write_unit(
        "tuned",
        &format!(
            "{}environment_file = [\"{}\", \"-/nonexistent/colony.env\"]\nenvironment = {{ OVER = \"unit\" }}\ndirectory = \"~\"\nnice = 5\noom_score_adj = 500\nio_weight = 50\nlimits = {{ core = 0, memlock = \"4M\", nofile = \"1000:2000\", nproc = \"500:600\" }}\n",
            sh(&format!(
                "echo \"$FROM_FILE/$QUOTED/$OVER $(pwd)\" > {}; exec sleep 100000",
                out.display()
            )),
            envf.display()
        ),
    );
    let c = c.start();
    let u = c.wait_state("tuned", "running");
    let pid = pid_of(&u);
    let line = wait_for("the unit's output", SOON, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    // directory = "~": root's home, from /etc/passwd.
    let home = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.split(':').nth(2) == Some("0"))
        .and_then(|l| l.split(':').nth(5).map(str::to_string))
        .unwrap();
    assert_eq!(line.trim(), format!("one/a b/unit {home}"));
    assert_eq!(limit(pid, "Max core file size"), ("0".into(), "0".into()));
    assert_eq!(
        limit(pid, "Max locked memory"),
        ((4u64 << 20).to_string(), (4u64 << 20).to_string())
    );
    assert_eq!(limit(pid, "Max open files"), ("1000".into(), "2000".into()));
    assert_eq!(limit(pid, "Max processes"), ("500".into(), "600".into()));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    // Field 19 of stat is nice; after `comm` it is the 17th.
    let nice: i32 = after_comm.split(' ').nth(16).unwrap().parse().unwrap();
    assert_eq!(nice, 5);
    let oom = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(oom.trim(), "500");
    // io_weight: in the unit's io.weight where its cgroup has the io controller, else a
    // warning in status (never silently nothing).
    let cg = u["cgroup"].as_str().unwrap_or_default();
    let weight = std::fs::read_to_string(format!("/sys/fs/cgroup{cg}/io.weight"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/unified{cg}/io.weight")));
    match weight {
        Ok(w) => assert!(w.contains("default 50"), "{w}"),
        Err(_) => {
            let warned = u["warnings"].as_array().is_some_and(|w| {
                w.iter()
                    .any(|x| x.as_str().is_some_and(|s| s.contains("io_weight")))
            });
            assert!(warned, "{u}");
        }
    }
}

#[test]
fn a_missing_environment_file_fails_the_start_with_its_reason() {
    let c = Colony::new();
    c.write_unit(
        "needy",
        "exec = [\"sleep\", \"100000\"]\nenvironment_file = \"/nonexistent/colony-needy.env\"\n[restart]\npolicy = \"never\"\n",
    );
    let c = c.start();
    let u = c.wait_unit("needy", "a failed start", |u| {
        u["last_exit"]["detail"]
            .as_str()
            .is_some_and(|e| e.contains("/nonexistent/colony-needy.env does not exist"))
    });
    assert_ne!(u["state"], "running", "{u}");
}

#[test]
fn managed_directories_are_owned_by_the_unit_and_the_runtime_one_goes_at_stop() {
    if !root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let (uid, gid) = nobody();
    let name = unique_name("colony-dirs");
    let c = Colony::new();
    let out = c.dir.path().join("dirs.out");
    writable_by(&c, &out, uid);
    c.write_unit(
        "dirs",
        &format!(
            "{}user = \"nobody\"\nruntime_directory = \"{name}/sock\"\nruntime_directory_mode = \"0750\"\nstate_directory = \"{name}\"\ncache_directory = \"{name}\"\ncache_directory_mode = \"0700\"\ndirectory = \"-/nonexistent/colony\"\n",
            sh(&format!(
                "echo \"$RUNTIME_DIRECTORY $STATE_DIRECTORY $(pwd)\" > {}; touch $RUNTIME_DIRECTORY/mine; exec sleep 100000",
                out.display()
            )),
        ),
    );
    let c = c.start();
    c.wait_state("dirs", "running");
    let line = wait_for("the unit's output", SOON, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    let run = Path::new("/run").join(&name).join("sock");
    let state = Path::new("/var/lib").join(&name);
    let cache = Path::new("/var/cache").join(&name);
    assert!(
        line.starts_with(&format!("{} {} ", run.display(), state.display())),
        "{line}"
    );
    for (p, mode) in [(&run, 0o750), (&state, 0o755), (&cache, 0o700)] {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", p.display());
        assert_eq!(m.mode() & 0o7777, mode, "{}", p.display());
    }
    wait_for("the unit's file in its runtime directory", SOON, || {
        run.join("mine").exists().then_some(())
    });
    let o = c.ctl(&["stop", "dirs"]);
    assert!(o.status.success(), "{o:?}");
    c.wait_state("dirs", "stopped");
    wait_for("the runtime directory removed", SOON, || {
        (!run.exists()).then_some(())
    });
    assert!(state.exists() && cache.exists(), "state and cache stay");
    for p in [Path::new("/run").join(&name), state, cache] {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// `runtime_directory_preserve = true`: the runtime directory and what the unit left in it
/// are still there after the stop.
#[test]
fn a_preserved_runtime_directory_stays_at_stop() {
    if !root() {
        eprintln!("skipped: needs root for /run");
        return;
    }
    let name = unique_name("colony-keep");
    let run = Path::new("/run").join(&name);
    let c = Colony::new();
    c.write_unit(
        "keep",
        &format!(
            "{}runtime_directory = \"{name}\"\nruntime_directory_preserve = true\n",
            sh("touch $RUNTIME_DIRECTORY/mine; exec sleep 100000")
        ),
    );
    let c = c.start();
    c.wait_state("keep", "running");
    wait_for("the unit's file in its runtime directory", SOON, || {
        run.join("mine").exists().then_some(())
    });
    let o = c.ctl(&["stop", "keep"]);
    assert!(o.status.success(), "{o:?}");
    c.wait_state("keep", "stopped");
    // Another unit's stop is a later event of the same loop: had the directory been removed
    // at the stop, it would be gone by then.
    c.write_unit("other", &sh("exec sleep 100000"));
    c.wait_state("other", "running");
    let o = c.ctl(&["stop", "other"]);
    assert!(o.status.success(), "{o:?}");
    c.wait_state("other", "stopped");
    assert!(run.join("mine").exists(), "{} removed", run.display());
    let _ = std::fs::remove_dir_all(&run);
}

#[test]
fn credentials_are_private_to_the_unit_and_gone_after_stop() {
    if !root() {
        eprintln!("skipped: needs root to chown and mount");
        return;
    }
    let (uid, _) = nobody();
    let c = Colony::new();
    let secret = c.dir.path().join("secret.key");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = c.dir.path().join("cred.out");
    writable_by(&c, &out, uid);
    c.write_unit(
        "creds",
        &format!(
            "{}user = \"nobody\"\nload_credential = {{ tls_key = \"{}\" }}\n",
            sh(&format!(
                "echo \"$CREDENTIALS_DIRECTORY $(cat $CREDENTIALS_DIRECTORY/tls_key)\" > {}; exec sleep 100000",
                out.display()
            )),
            secret.display()
        ),
    );
    let c = c.start();
    c.wait_state("creds", "running");
    let line = wait_for("the unit's output", SOON, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    let (dir, value) = line.trim().split_once(' ').unwrap();
    assert_eq!(value, "s3cret");
    let dir = Path::new(dir).to_path_buf();
    assert!(dir.starts_with(&c.run), "{}", dir.display());
    let d = std::fs::metadata(&dir).unwrap();
    assert_eq!((d.uid(), d.mode() & 0o7777), (uid, 0o500));
    let f = std::fs::metadata(dir.join("tls_key")).unwrap();
    assert_eq!((f.uid(), f.mode() & 0o7777), (uid, 0o400));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let fs = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
        .map(|l| {
            l.split(" - ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        });
    assert_eq!(fs.as_deref(), Some("ramfs"), "{mounts}");
    let o = c.ctl(&["stop", "creds"]);
    assert!(o.status.success(), "{o:?}");
    c.wait_state("creds", "stopped");
    wait_for("the credentials removed", SOON, || {
        (!dir.exists()).then_some(())
    });
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.to_str().unwrap()), "still mounted");
}

/// colony-init, as root, follows no link on a unit's behalf: a link in the place of a
/// managed directory or of an environment file fails the start (status says why), and
/// what the link names is left as it was.
#[test]
fn links_in_place_of_directories_or_environment_files_are_refused() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let c = Colony::new();
    let target = c.dir.path().join("precious");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
    let name = unique_name("colony-link");
    let link = Path::new("/run").join(&name);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let secret = c.dir.path().join("secret.env");
    std::fs::write(&secret, "TOKEN=x\n").unwrap();
    let env_link = c.dir.path().join("app.env");
    std::os::unix::fs::symlink(&secret, &env_link).unwrap();
    c.write_unit(
        "dirlink",
        &format!(
            "exec = [\"sleep\", \"100000\"]\nuser = \"nobody\"\nruntime_directory = \"{name}\"\n[restart]\npolicy = \"never\"\n"
        ),
    );
    c.write_unit(
        "envlink",
        &format!(
            "exec = [\"sleep\", \"100000\"]\nenvironment_file = \"{}\"\n[restart]\npolicy = \"never\"\n",
            env_link.display()
        ),
    );
    let c = c.start();
    for unit in ["dirlink", "envlink"] {
        c.wait_unit(unit, "a start refused for a link", |u| {
            u["last_exit"]["detail"]
                .as_str()
                .is_some_and(|e| e.contains("symbolic link"))
        });
    }
    let m = std::fs::metadata(&target).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o700));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let _ = std::fs::remove_file(&link);
}

/// A hook run beside the program (`exec_reload`) reads the credentials the program has: the
/// same directory, the same mount, not loaded again under the program's feet.
#[test]
fn a_hook_shares_the_credentials_of_the_running_program() {
    if !root() {
        eprintln!("skipped: needs root to chown and mount");
        return;
    }
    let c = Colony::new();
    let secret = c.dir.path().join("secret.key");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let out = c.dir.path().join("reload.out");
    c.write_unit(
        "creds",
        &format!(
            "{}load_credential = {{ key = \"{}\" }}\nexec_reload = [\"/bin/sh -c 'echo $CREDENTIALS_DIRECTORY $(cat $CREDENTIALS_DIRECTORY/key) > {}'\"]\n",
            sh("exec sleep 100000"),
            secret.display(),
            out.display()
        ),
    );
    let c = c.start();
    c.wait_state("creds", "running");
    let mount_of = |dir: &Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
            .map(|l| l.split(' ').next().unwrap().to_string())
    };
    let dir = c.run.join("credentials").join("creds");
    let before = (std::fs::metadata(&dir).unwrap().ino(), mount_of(&dir));
    assert!(
        before.1.is_some(),
        "credentials not mounted at {}",
        dir.display()
    );
    let o = c.ctl(&["reload", "creds"]);
    assert!(o.status.success(), "{o:?}");
    let line = wait_for("the hook's output", SOON, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(line.trim(), format!("{} s3cret", dir.display()));
    let after = (std::fs::metadata(&dir).unwrap().ino(), mount_of(&dir));
    assert_eq!(before, after, "the credentials were loaded again");
}
