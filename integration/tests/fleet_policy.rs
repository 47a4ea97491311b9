//! A fleet host runs only what its policy allows, and what it reads from etcd is checked:
//! whoever can write the fleet's prefix must not get root on the hosts, a host record
//! written without a lease must not draw applications, and a malformed assignment key must
//! not become a file. Each test writes to etcd directly (etcdctl), as an attacker would.
//!
//! Needs what `tests/fleet.rs` needs (root, ip, unshare, etcd); skipped otherwise.

use std::path::Path;
use std::process::{Command, Stdio};

use colony_integration::fleet::*;
use colony_integration::wait_for;
use serde_json::Value;

/// `etcdctl ARGS` against the fleet's etcd; its output.
fn etcdctl(f: &Fleet, args: &[&str]) -> String {
    let o = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", f.etcd.endpoints.join(",")))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("etcdctl");
    assert!(
        o.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An assignment value, as the leader writes it.
fn assignment(app: &str, unit: &str) -> String {
    serde_json::json!({"app": app, "unit": unit, "movable": false}).to_string()
}

/// A unit that leaves `proof` (its uid) behind if it ever runs, then sleeps.
fn proving(proof: &Path, rest: &str) -> String {
    format!(
        "exec = [\"/bin/sh\", \"-c\", \"id -u > {} && exec sleep 100000\"]\n{rest}",
        proof.display()
    )
}

/// Lines of the agent's log (as colony-init keeps it) that contain `needle`.
fn agent_lines(h: &Host, needle: &str) -> usize {
    std::fs::read_to_string(h.dir.join("log/colony-fleet.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// A directory where any unit's user can leave a proof.
fn proofs(f: &Fleet) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = f.tmp.path().join("proofs");
    std::fs::create_dir_all(&d).expect("proofs dir");
    std::fs::set_permissions(f.tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    d
}

/// Fail at once if a unit that must never run left its proof.
fn never_ran(proof: &Path) {
    if let Ok(uid) = std::fs::read_to_string(proof) {
        panic!(
            "{} ran (as uid {}): it must have been refused",
            proof.display(),
            uid.trim()
        );
    }
}

#[test]
fn a_host_runs_only_what_its_policy_allows_and_says_why_once() {
    if !can_run() {
        return;
    }
    let mut f = Fleet::new(1, "");
    f.policy = "[policy]\nusers = [\"nobody\"]\n".to_string();
    f.add_host("h1", "");
    f.wait_hosts_up(&["h1"]);
    let tmp = proofs(&f);
    let on_h1 = "[placement]\nhosts = [\"h1\"]\n";

    // Root with CAP_SYS_ADMIN, root by default (no user: colony-init's own), a user the
    // policy does not list: each refused, none written, each with its reason.
    let cases = [
        (
            "rootapp",
            "user = \"root\"\ncapabilities = [\"CAP_SYS_ADMIN\"]\n",
            "is root (uid 0)",
        ),
        ("nouser", "", "colony-init's own user, root"),
        (
            "daemonapp",
            "user = \"daemon\"\n",
            "not one of this host's policy users",
        ),
    ];
    for (app, keys, _) in cases {
        let proof = tmp.join(format!("{app}.proof"));
        f.apply(app, &format!("{}{on_h1}", proving(&proof, keys)));
    }
    for (app, _, reason) in cases {
        let proof = tmp.join(format!("{app}.proof"));
        let a = wait_for(&format!("{app} refused on h1 with a reason"), LONG, || {
            never_ran(&proof);
            f.app(app).filter(|a| a["state"] == "refused")
        });
        let why = a["why"].as_str().unwrap_or_default();
        assert!(why.contains("refused on h1") && why.contains(reason), "{a}");
        assert_eq!(a["hosts"], serde_json::json!([]), "{a}");
        assert!(!f
            .host("h1")
            .units_dir()
            .join(format!("fleet-{app}.unit"))
            .exists());
    }
    // The host's record says so too.
    let s = f.status().expect("fleet status");
    let h1 = s["hosts"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["name"] == "h1"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(h1["up"], true, "{h1}");

    // A user the policy allows runs, with no_new_privileges set by the host.
    let ok_proof = tmp.join("ok.proof");
    f.apply(
        "ok",
        &format!("{}{on_h1}", proving(&ok_proof, "user = \"nobody\"\n")),
    );
    f.wait_runs_on("ok", &["h1"], LONG);
    let unit = std::fs::read_to_string(f.host("h1").units_dir().join("fleet-ok.unit"))
        .expect("fleet-ok.unit");
    assert!(unit.contains("no_new_privileges = true"), "{unit}");
    let nobody = wait_for("ok's proof", LONG, || {
        std::fs::read_to_string(&ok_proof).ok()
    });
    assert_ne!(nobody.trim(), "0");

    // Every assignment event made the agent check again; each refusal was said once.
    for (app, _, _) in cases {
        never_ran(&tmp.join(format!("{app}.proof")));
        let n = agent_lines(f.host("h1"), &format!("assignment {app} refused"));
        assert_eq!(
            n,
            1,
            "{app} refused in {n} log lines\n{}",
            f.host("h1").log()
        );
    }
}

#[test]
fn leaseless_or_invalid_host_records_are_not_up_and_draw_nothing() {
    if !can_run() {
        return;
    }
    let mut f = Fleet::new(1, "");
    f.add_host("h1", "");
    f.wait_hosts_up(&["h1"]);
    let p = "/colony/fleet/";

    // A host record written without a lease, as loaded as can be: never up, draws nothing.
    let fake = serde_json::json!({
        "name": "h9", "labels": {}, "cpus": 64, "load": [-1e308, 0.0, 0.0],
        "memory_bytes": 1, "memory_available_bytes": 1, "units": [], "agent": ""
    });
    etcdctl(&f, &["put", &format!("{p}hosts/h9"), &fake.to_string()]);
    // One under a live lease, with a load that is no load.
    let grant = etcdctl(&f, &["lease", "grant", "600"]);
    let lease = grant
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    let mut bad = fake.clone();
    bad["name"] = "h8".into();
    etcdctl(
        &f,
        &[
            "put",
            &format!("--lease={lease}"),
            &format!("{p}hosts/h8"),
            &bad.to_string(),
        ],
    );
    f.apply(
        "ll",
        &format!("{SLEEPER}[placement]\nstrategy = \"least-loaded\"\n"),
    );
    wait_for("ll to run on h1, not on a fake host", LONG, || {
        let a = f.app("ll")?;
        let assigned: Vec<&str> = a["assigned"]
            .as_array()?
            .iter()
            .filter_map(|h| h.as_str())
            .collect();
        assert!(
            !assigned.iter().any(|h| *h == "h9" || *h == "h8"),
            "ll assigned to a host that is not up: {a}"
        );
        (f.running_on("ll") == ["h1"]).then_some(())
    });
    assert_eq!(f.up_hosts(), ["h1"]);
    // The leader said once why each fake host is not up.
    let h1 = f.host("h1");
    assert_eq!(
        agent_lines(h1, "written without a lease"),
        1,
        "{}",
        h1.log()
    );
    assert_eq!(agent_lines(h1, "load is not a finite"), 1, "{}", h1.log());
    // A record under no lease is never up, so it can be forgotten (and goes with it).
    let o = f.ctl(&["forget", "h9"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left = etcdctl(&f, &["get", "--keys-only", &format!("{p}hosts/h9")]);
    assert_eq!(left.trim(), "", "hosts/h9 is still there");
}

#[test]
fn bare_or_malformed_assignments_write_nothing() {
    if !can_run() {
        return;
    }
    // Root allowed: what stops these is the record and the names, not the policy.
    let mut f = Fleet::new(1, "");
    f.add_host("h1", "");
    f.wait_hosts_up(&["h1"]);
    let tmp = proofs(&f);
    let p = "/colony/fleet/";

    // A bare assignment (no application record) and malformed names: nothing is written.
    let proof = tmp.join("bare.proof");
    let unit = proving(&proof, "");
    let assign = |key: &str, app: &str| {
        etcdctl(
            &f,
            &[
                "put",
                &format!("{p}assign/h1/{key}"),
                &assignment(app, &unit),
            ],
        );
    };
    assign("bare", "bare");
    assign("", "");
    assign("a\nb", "a\nb");
    let h1 = f.host("h1");
    let only_ours = || {
        let mut names: Vec<String> = std::fs::read_dir(h1.units_dir())
            .expect("units dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["colony-fleet.unit"]);
    };
    // Each is refused by the agent, or taken back by the leader (this host's agent leads:
    // it removes assignments of no application) before the agent has seen it.
    let said = [
        (
            "no application record \"bare\"",
            "unassigned app=bare host=h1",
        ),
        ("malformed assignment: key \"\"", "unassigned app= host=h1"),
        ("malformed assignment: key \"a\\nb\"", "unassigned app=a"),
    ];
    let seen = |(refused, unassigned): (&str, &str)| {
        agent_lines(h1, refused) + agent_lines(h1, unassigned)
    };
    wait_for("the agent to refuse or unassign each of them", LONG, || {
        never_ran(&proof);
        only_ours();
        said.iter().all(|s| seen(*s) > 0).then_some(())
    });
    // More assignment events; each was said once.
    f.apply(
        "later",
        &format!("{SLEEPER}[placement]\nhosts = [\"h1\"]\n"),
    );
    f.wait_runs_on("later", &["h1"], LONG);
    never_ran(&proof);
    for s in said {
        assert!(agent_lines(h1, s.0) <= 1, "{s:?}\n{}", h1.log());
        assert!(agent_lines(h1, s.1) <= 1, "{s:?}\n{}", h1.log());
    }
}
