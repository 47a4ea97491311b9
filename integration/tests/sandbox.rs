//! `[sandbox]` on real processes: for each key, a unit that tries what the key forbids and
//! fails the way systemd's would, and the same unit without the key succeeding. The probe
//! prints `what=errno` lines (0: it worked) and then waits, so the test also reads its
//! /proc/PID/mountinfo and /proc/PID/status. Every mount happens in the units' own mount
//! namespaces: the host's table is compared before and after.

use std::path::{Path, PathBuf};

use colony_integration::{compile_c, wait_for, Colony, SOON};

/// The probe: vm-tests builds the same file into its image as /bin/sbprobe.
const PROBE: &str = include_str!("../../vm-tests/c/sbprobe.c");

/// The probe, built once for all the tests (which run at the same time: a rebuild while
/// another test execs it would fail that exec), outside /tmp (a private /tmp would hide it).
fn probe() -> Option<PathBuf> {
    static PROBE_BIN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PROBE_BIN
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-probe");
            std::fs::create_dir_all(&dir).ok()?;
            compile_c(&dir, "probe", PROBE)
        })
        .clone()
}

/// The host's mount table, less the network namespaces other tests (the fleet's hosts)
/// may be adding and removing meanwhile.
fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_none_or(|at| !at.starts_with("/run/netns"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Only root may build namespaces; the tests skip elsewhere.
fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

struct Run {
    c: Colony,
}

impl Run {
    /// `units`: (name, probe arguments, [sandbox] body or "" for none, extra top-level keys).
    fn start(probe: &Path, units: &[(&str, &[&str], &str)]) -> Run {
        let c = Colony::new();
        for (name, args, sandbox) in units {
            let mut exec = vec![format!("{:?}", probe.display().to_string())];
            exec.extend(args.iter().map(|a| format!("{a:?}")));
            let mut text = format!(
                "exec = [{}]\n[restart]\npolicy = \"never\"\n",
                exec.join(", ")
            );
            if !sandbox.is_empty() {
                text.push_str("[sandbox]\n");
                text.push_str(sandbox);
                text.push('\n');
            }
            c.write_unit(name, &text);
        }
        Run { c: c.start() }
    }

    /// The probe's results once it printed them, and its pid.
    fn results(&self, name: &str) -> (Vec<(String, i32)>, i32) {
        let u = self.c.wait_state(name, "running");
        let pid = u["pid"].as_i64().unwrap() as i32;
        let log = self.c.logs.join(format!("{name}.log"));
        let text = wait_for(&format!("{name}'s probe"), SOON, || {
            let t = std::fs::read_to_string(&log).ok()?;
            t.contains("DONE").then_some(t)
        });
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some((k, v)) = line.rsplit_once('=') {
                let k = k.rsplit(' ').next().unwrap_or(k).to_string();
                if let Ok(v) = v.trim().parse() {
                    out.push((k, v));
                }
            }
        }
        (out, pid)
    }
}

fn get(r: &[(String, i32)], k: &str) -> i32 {
    r.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {k} in {r:?}"))
}

fn status_field(pid: i32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// The mount options of `at` in the process's table (the last mount there).
fn mount_opts(pid: i32, at: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    s.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(4) == Some(&at)).then(|| format!("{} {}", f[5], l))
    })
}

#[test]
fn protect_system_strict_and_its_writable_paths() {
    if !root() {
        return;
    }
    let Some(probe) = probe() else { return };
    let before = host_mounts();
    let writable = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let w = writable.path().join("f");
    let usr = format!("/usr/colony-probe-{}", std::process::id());
    let args_on = [
        format!("write:{usr}"),
        "write:/etc/colony-probe".into(),
        format!("write:{}", w.display()),
    ];
    let args_on: Vec<&str> = args_on.iter().map(String::as_str).collect();
    let sandbox = format!(
        "protect_system = \"strict\"\nread_write_paths = [{:?}]",
        writable.path().display().to_string()
    );
    let args_off = [format!("write:{usr}")];
    let args_off: Vec<&str> = args_off.iter().map(String::as_str).collect();
    let run = Run::start(
        &probe,
        &[("strict", &args_on, &sandbox), ("open", &args_off, "")],
    );
    let (r, pid) = run.results("strict");
    assert_eq!(get(&r, &format!("write:{usr}")), libc::EROFS, "{r:?}");
    assert_eq!(get(&r, "write:/etc/colony-probe"), libc::EROFS);
    assert_eq!(get(&r, &format!("write:{}", w.display())), 0);
    let root_opts = mount_opts(pid, "/").unwrap();
    assert!(root_opts.starts_with("ro"), "{root_opts}");
    let proc_opts = mount_opts(pid, "/proc").unwrap();
    assert!(proc_opts.starts_with("rw"), "{proc_opts}");
    let (r, _) = run.results("open");
    assert_eq!(get(&r, &format!("write:{usr}")), 0);
    drop(run);
    assert_eq!(before, host_mounts(), "the host's mounts changed");
}

#[test]
fn protect_system_true_full_and_paths() {
    if !root() {
        return;
    }
    let Some(probe) = probe() else { return };
    let before = host_mounts();
    let hidden = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(hidden.path().join("secret"), "x").unwrap();
    let ro = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let h = hidden.path().display().to_string();
    let o = ro.path().display().to_string();
    let usr = format!("write:/usr/colony-probe-{}", std::process::id());
    let etc = format!("write:/etc/colony-probe-{}", std::process::id());
    let count = format!("count:{h}");
    let ro_write = format!("write:{o}/f");
    let args: Vec<&str> = vec![&usr, &etc, &count, &ro_write];
    let yes =
        format!("protect_system = true\ninaccessible_paths = [{h:?}]\nread_only_paths = [{o:?}]");
    let full = "protect_system = \"full\"".to_string();
    let run = Run::start(
        &probe,
        &[
            ("yes", &args, &yes),
            ("full", &args, &full),
            ("no", &args, ""),
        ],
    );
    let (r, _) = run.results("yes");
    assert_eq!(get(&r, &usr), libc::EROFS, "{r:?}");
    assert_eq!(get(&r, &etc), 0);
    assert_eq!(get(&r, &count), 0, "inaccessible: empty");
    assert_eq!(get(&r, &ro_write), libc::EROFS);
    let (r, _) = run.results("full");
    assert_eq!(get(&r, &usr), libc::EROFS);
    assert_eq!(get(&r, &etc), libc::EROFS);
    assert_eq!(get(&r, &count), 1);
    let (r, _) = run.results("no");
    assert_eq!(get(&r, &usr), 0);
    assert_eq!(get(&r, &etc), 0);
    assert_eq!(get(&r, &ro_write), 0);
    drop(run);
    assert_eq!(before, host_mounts(), "the host's mounts changed");
}

#[test]
fn private_tmp_devices_network_and_kernel_protections() {
    if !root() {
        return;
    }
    let Some(probe) = probe() else { return };
    let before = host_mounts();
    // Something in the host's /tmp the private one does not have.
    let marker = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    let m = format!("exists:{}", marker.path().display());
    let args = [
        m.as_str(),
        "exists:/dev/null",
        "exists:/dev/kmsg",
        "count:/proc/sys",
        "write:/proc/sys/kernel/domainname",
        "write:/sys/fs/cgroup/colony-probe",
        "ifaces",
        "count:/lib/modules",
        "mount",
    ];
    let on = "private_tmp = true\nprivate_devices = true\nprivate_network = true\nprotect_kernel_tunables = true\nprotect_kernel_modules = true\nprotect_kernel_logs = true\nprotect_control_groups = true";
    // Without the keys but with a namespace of its own, so its mount stays its own.
    let off = "private_tmp = true";
    let run = Run::start(&probe, &[("on", &args, on), ("off", &args, off)]);
    let (r, pid) = run.results("on");
    assert_eq!(get(&r, &m), libc::ENOENT, "{r:?}");
    assert_eq!(get(&r, "exists:/dev/null"), 0);
    assert_eq!(get(&r, "exists:/dev/kmsg"), libc::ENOENT);
    assert_eq!(get(&r, "write:/proc/sys/kernel/domainname"), libc::EROFS);
    assert_eq!(get(&r, "ifaces"), 1, "only lo");
    assert!(get(&r, "count:/lib/modules") <= 0, "modules hidden");
    let tmp = mount_opts(pid, "/tmp").unwrap();
    assert!(tmp.contains("tmpfs"), "{tmp}");
    let dev = mount_opts(pid, "/dev").unwrap();
    assert!(dev.contains("tmpfs"), "{dev}");
    let (r, _) = run.results("off");
    assert_eq!(get(&r, "exists:/dev/kmsg"), 0, "{r:?}");
    assert!(get(&r, "ifaces") > 1 || !Path::new("/sys/class/net/lo").exists());
    let host_modules = std::fs::read_dir("/lib/modules").map_or(-2, |d| d.count() as i32);
    if host_modules > 0 {
        assert_eq!(get(&r, "count:/lib/modules"), host_modules);
    }
    assert_eq!(get(&r, "mount"), 0);
    drop(run);
    assert_eq!(before, host_mounts(), "the host's mounts changed");
}

/// protect_hostname, protect_clock and protect_proc, with a unit that is not root (root sees
/// every process whatever hidepid says).
#[test]
fn hostname_clock_and_proc_protections() {
    if !root() {
        return;
    }
    let Some(probe) = probe() else { return };
    let before = host_mounts();
    let rtc = Path::new("/dev/rtc0");
    let has_rtc = std::fs::metadata(rtc).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_char_device()
    });
    let c = Colony::new();
    let unit = |args: &[&str], sandbox: &str| {
        let mut exec = vec![format!("{:?}", probe.display().to_string())];
        exec.extend(args.iter().map(|a| format!("{a:?}")));
        format!(
            "exec = [{}]\nuser = \"nobody\"\n[restart]\npolicy = \"never\"\n[sandbox]\n{sandbox}\n",
            exec.join(", ")
        )
    };
    let on_args = ["hostname", "adjtimex", "chr:/dev/rtc0", "exists:/proc/1"];
    let off_args = ["adjtimex", "chr:/dev/rtc0", "exists:/proc/1"];
    c.write_unit(
        "on",
        &unit(
            &on_args,
            "protect_hostname = true\nprotect_clock = true\nprotect_proc = \"invisible\"",
        ),
    );
    // A namespace of its own, so that nothing it does could reach the host.
    c.write_unit("off", &unit(&off_args, "private_tmp = true"));
    let run = Run { c: c.start() };
    let (r, pid) = run.results("on");
    // As root, sethostname would succeed in the unit's own UTS namespace; as nobody the
    // filter answers first: EPERM either way, and the host keeps its name.
    assert_eq!(get(&r, "hostname"), libc::EPERM, "{r:?}");
    assert_eq!(get(&r, "adjtimex"), libc::EPERM, "{r:?}");
    if has_rtc {
        assert_ne!(get(&r, "chr:/dev/rtc0"), 0, "rtc still a device: {r:?}");
    }
    assert_eq!(get(&r, "exists:/proc/1"), libc::ENOENT, "{r:?}");
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/uts")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "a UTS namespace of its own"
    );
    let proc_opts = mount_opts(pid, "/proc").unwrap();
    assert!(proc_opts.contains("hidepid=invisible"), "{proc_opts}");
    assert_eq!(status_field(pid, "Seccomp"), "2");
    let (r, pid) = run.results("off");
    assert_eq!(get(&r, "adjtimex"), 0, "{r:?}");
    if has_rtc {
        assert_eq!(get(&r, "chr:/dev/rtc0"), 0, "{r:?}");
    }
    assert_eq!(get(&r, "exists:/proc/1"), 0, "{r:?}");
    assert_eq!(ns(&pid.to_string()), ns("self"));
    drop(run);
    assert_eq!(before, host_mounts(), "the host's mounts changed");
}

#[test]
fn seccomp_keys_fail_as_systemd_says() {
    if !root() {
        return;
    }
    let Some(probe) = probe() else { return };
    let before = host_mounts();
    let args = [
        "mount",
        "packet",
        "inet",
        "wx",
        "unshare",
        "personality",
        "realtime",
        "suid",
    ];
    let on = "private_tmp = true\nsystem_call_filter = [\"~@mount\"]\nsystem_call_error_number = \"EPERM\"\nrestrict_address_families = [\"AF_UNIX\", \"AF_INET\", \"AF_INET6\"]\nmemory_deny_write_execute = true\nrestrict_namespaces = true\nlock_personality = true\nrestrict_realtime = true\nrestrict_suid_sgid = true";
    let off = "private_tmp = true";
    let run = Run::start(&probe, &[("on", &args, on), ("off", &args, off)]);
    let (r, pid) = run.results("on");
    assert_eq!(get(&r, "mount"), libc::EPERM, "{r:?}");
    assert_eq!(get(&r, "packet"), libc::EAFNOSUPPORT);
    assert_eq!(get(&r, "inet"), 0);
    assert_eq!(get(&r, "wx"), libc::EPERM);
    assert_eq!(get(&r, "unshare"), libc::EPERM);
    assert_eq!(get(&r, "personality"), libc::EPERM);
    assert_eq!(get(&r, "realtime"), libc::EPERM);
    assert_eq!(get(&r, "suid"), libc::EPERM);
    assert_eq!(status_field(pid, "Seccomp"), "2");
    // Root with CAP_SYS_ADMIN: no implied no_new_privs, as under systemd.
    assert_eq!(status_field(pid, "NoNewPrivs"), "0");
    let (r, pid) = run.results("off");
    for k in args {
        assert_eq!(get(&r, k), 0, "{k} without the keys: {r:?}");
    }
    assert_eq!(status_field(pid, "Seccomp"), "0");
    drop(run);
    assert_eq!(before, host_mounts(), "the host's mounts changed");
}

#[test]
fn an_allow_list_kills_by_default_and_implies_no_new_privs_without_cap_sys_admin() {
    if !root() {
        return;
    }
    let Some(probe) = probe() else { return };
    let c = Colony::new();
    let p = probe.display().to_string();
    // Allowed: the service set. Not: @mount, so the probe's mount kills it (SIGSYS).
    c.write_unit(
        "allow",
        &format!("exec = [{p:?}, \"inet\"]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n[restart]\npolicy = \"never\"\n[sandbox]\nsystem_call_filter = [\"@system-service\"]\n"),
    );
    c.write_unit(
        "killed",
        &format!("exec = [{p:?}, \"mount\"]\n[restart]\npolicy = \"never\"\n[sandbox]\nprivate_tmp = true\nsystem_call_filter = [\"@system-service\"]\n"),
    );
    let run = Run { c: c.start() };
    let (r, pid) = run.results("allow");
    assert_eq!(get(&r, "inet"), 0);
    assert_eq!(status_field(pid, "Seccomp"), "2");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    run.c.wait_unit("killed", "dead by SIGSYS", |u| {
        u["last_exit"]["signal"] == "SIGSYS" && u["state"] != "running"
    });
}

#[test]
fn a_missing_path_fails_the_start_with_a_clear_error() {
    if !root() {
        return;
    }
    let Some(probe) = probe() else { return };
    let c = Colony::new();
    c.write_unit(
        "missing",
        &format!(
            "exec = [{:?}]\n[restart]\npolicy = \"never\"\n[sandbox]\nread_write_paths = [\"/no/such/dir\"]\n",
            probe.display().to_string()
        ),
    );
    let run = Run { c: c.start() };
    let u = run.c.wait_unit("missing", "failed", |u| {
        u["state"] == "failed"
            && u["last_exit"]["detail"]
                .as_str()
                .is_some_and(|e| e.contains("/no/such/dir"))
    });
    let detail = u["last_exit"]["detail"].as_str().unwrap();
    assert!(detail.contains("read_write_paths"), "{detail}");
}

/// A free TCP port on loopback (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request/answer on `port`, once something answers there.
fn ask(port: u16, request: &[u8], until: &str) -> String {
    use std::io::{Read, Write};
    wait_for(&format!("an answer on port {port}"), SOON, || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        s.write_all(request).ok()?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&out).contains(until) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        text.contains(until).then_some(text)
    })
}

#[test]
fn redis_serves_under_strict_with_its_own_writable_dir() {
    if !root() {
        return;
    }
    if !Path::new("/usr/bin/redis-server").exists() {
        colony_integration::skip_or_fail!("skipped: no redis-server (./test-all installs it)");
        return;
    }
    let before = host_mounts();
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let d = data.path().display().to_string();
    let port = free_port();
    let c = Colony::new();
    c.write_unit(
        "redis",
        &format!(
            "exec = [\"/usr/bin/redis-server\", \"--port\", \"{port}\", \"--bind\", \"127.0.0.1\", \"--dir\", {d:?}, \"--save\", \"\", \"--daemonize\", \"no\"]\n[sandbox]\nprotect_system = \"strict\"\nprotect_home = true\nprivate_tmp = true\nprivate_devices = true\nprotect_kernel_tunables = true\nprotect_kernel_modules = true\nprotect_control_groups = true\nread_write_paths = [{d:?}]\nsystem_call_filter = [\"@system-service\"]\nsystem_call_error_number = \"EPERM\"\nrestrict_address_families = [\"AF_UNIX\", \"AF_INET\", \"AF_INET6\"]\nmemory_deny_write_execute = true\nrestrict_namespaces = true\nrestrict_realtime = true\nrestrict_suid_sgid = true\nlock_personality = true\n"
        ),
    );
    let c = c.start();
    let u = c.wait_state("redis", "running");
    let pid = u["pid"].as_i64().unwrap() as i32;
    let pong = ask(port, b"PING\r\n", "PONG");
    assert!(pong.contains("+PONG"), "{pong}");
    // SAVE writes dump.rdb into its writable directory, under a read-only root.
    let saved = ask(port, b"SET k v\r\nSAVE\r\n", "+OK\r\n+OK");
    assert!(saved.contains("+OK\r\n+OK"), "{saved}");
    assert!(data.path().join("dump.rdb").exists());
    assert!(mount_opts(pid, "/").unwrap().starts_with("ro"));
    assert_eq!(status_field(pid, "Seccomp"), "2");
    drop(c);
    assert_eq!(before, host_mounts(), "the host's mounts changed");
}

#[test]
fn nginx_serves_under_strict_with_its_own_writable_dir() {
    if !root() {
        return;
    }
    if !Path::new("/usr/sbin/nginx").exists() {
        colony_integration::skip_or_fail!("skipped: no nginx (./test-all installs nginx-light)");
        return;
    }
    let before = host_mounts();
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let d = data.path().display().to_string();
    let port = free_port();
    let conf = data.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nworker_processes 1;\nevents {{ }}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200 \"sandboxed\\n\"; }}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let c = Colony::new();
    c.write_unit(
        "nginx",
        &format!(
            "exec = [\"/usr/sbin/nginx\", \"-c\", {:?}, \"-g\", \"daemon off;\"]\n[sandbox]\nprotect_system = \"strict\"\nprotect_home = true\nprivate_tmp = true\nprivate_devices = true\nprotect_kernel_tunables = true\nprotect_kernel_modules = true\nprotect_control_groups = true\nread_write_paths = [{d:?}, \"-/var/lib/nginx\", \"-/var/log/nginx\"]\nsystem_call_filter = [\"@system-service\"]\nsystem_call_error_number = \"EPERM\"\nrestrict_address_families = [\"AF_UNIX\", \"AF_INET\", \"AF_INET6\"]\nrestrict_namespaces = true\nrestrict_realtime = true\nrestrict_suid_sgid = true\nlock_personality = true\n",
            conf.display().to_string()
        ),
    );
    let c = c.start();
    let u = c.wait_state("nginx", "running");
    let pid = u["pid"].as_i64().unwrap() as i32;
    let answer = ask(
        port,
        b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "sandboxed",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Its access log is written in its writable directory.
    wait_for("the access log line", SOON, || {
        std::fs::read_to_string(data.path().join("access.log"))
            .ok()
            .filter(|t| t.contains("GET /"))
    });
    assert!(mount_opts(pid, "/").unwrap().starts_with("ro"));
    assert_eq!(status_field(pid, "Seccomp"), "2");
    drop(c);
    assert_eq!(before, host_mounts(), "the host's mounts changed");
}
