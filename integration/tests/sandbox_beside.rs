//! `[sandbox]` for the commands colony-init runs beside a unit's program: an `exec` health
//! check enters the running program's mount and network namespaces (its private /tmp, its
//! loopback-only network) and gets the same seccomp filters and no_new_privs.

use std::path::Path;

use colony_integration::{wait_for, Colony, SOON};

#[test]
fn an_exec_health_check_runs_in_the_units_sandbox() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    // Outside /tmp: the check's private /tmp would hide it.
    let out = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let o = out.path().display();
    let check = format!(
        "cat /proc/self/status > {o}/status.tmp; ls /tmp > {o}/tmp.tmp; \
         cat /proc/net/dev > {o}/net.tmp; readlink /proc/self/ns/mnt > {o}/mnt.tmp; \
         for f in status tmp net mnt; do mv {o}/$f.tmp {o}/$f; done"
    );
    let sandbox =
        "private_tmp = true\nprivate_network = true\nrestrict_address_families = [\"AF_UNIX\"]\n";
    let c = Colony::new();
    for (name, sb) in [("boxed", sandbox), ("plain", "")] {
        let dir = out.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        // The unit and its check run as nobody: without CAP_SYS_ADMIN, its filters come
        // with no_new_privs.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let check = check.replace(&o.to_string(), &dir.display().to_string());
        let mut text = format!(
            "user = \"nobody\"\n\
             exec = [\"/bin/sh\", \"-c\", \"echo x > /tmp/unit-marker-{name}; exec sleep 1000\"]\n\
             [health]\nexec = [\"/bin/sh\", \"-c\", {check:?}]\nperiod = \"200ms\"\ngrace = \"0s\"\n"
        );
        if !sb.is_empty() {
            text.push_str("[sandbox]\n");
            text.push_str(sb);
        }
        c.write_unit(name, &text);
    }
    let c = c.start();
    let read = |name: &str, f: &str| -> String {
        let p = out.path().join(name).join(f);
        wait_for(&format!("{name}'s check wrote {f}"), SOON, || {
            std::fs::read_to_string(&p).ok()
        })
    };
    let field = |status: &str, k: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:")))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let pid = |name: &str| c.wait_state(name, "running")["pid"].as_i64().unwrap() as i32;
    let mnt_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();

    // Sandboxed: the program's namespaces, its filters.
    let boxed = pid("boxed");
    let status = read("boxed", "status");
    assert_eq!(field(&status, "Seccomp"), "2", "{status}");
    assert_eq!(field(&status, "NoNewPrivs"), "1", "{status}");
    assert!(read("boxed", "tmp").contains("unit-marker-boxed"));
    let net = read("boxed", "net");
    let ifaces: Vec<&str> = net.lines().skip(2).collect();
    assert_eq!(ifaces.len(), 1, "only lo: {net}");
    assert!(ifaces[0].trim_start().starts_with("lo:"), "{net}");
    assert_eq!(
        Path::new(read("boxed", "mnt").trim()),
        mnt_of(boxed),
        "the check is not in the unit's mount namespace"
    );
    assert_ne!(mnt_of(boxed), mnt_of(std::process::id() as i32));

    // Without [sandbox]: the host's view, no filter.
    let plain = pid("plain");
    let status = read("plain", "status");
    assert_eq!(field(&status, "Seccomp"), "0", "{status}");
    assert_eq!(field(&status, "NoNewPrivs"), "0", "{status}");
    assert!(!read("plain", "tmp").contains("unit-marker-boxed"));
    assert_eq!(
        Path::new(read("plain", "mnt").trim()),
        mnt_of(plain),
        "{}",
        c.init_log()
    );
    for name in ["boxed", "plain"] {
        c.wait_unit(name, "healthy", |u| u["health"] == "good");
    }
}
