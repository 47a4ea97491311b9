//! Import of hooks, dependencies and conditions from systemd: each carried key, each unit
//! passing `colonyctl check`.

use std::path::{Path, PathBuf};

use colonyctl::import::{run_with, ImportArgs};
use units::conditions::Check;
use units::hooks::parse_hook_line;

fn import(files: &[PathBuf], out: &Path) -> (i32, String) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run_with(
        ImportArgs {
            from: None,
            out: Some(out.to_path_buf()),
            dry_run: false,
            strict: false,
            files: files.to_vec(),
            json: false,
        },
        &mut o,
        &mut e,
    );
    let text = String::from_utf8_lossy(&o).to_string() + &String::from_utf8_lossy(&e);
    (code, text)
}

fn line<'a>(report: &'a str, needle: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no report line with {needle:?} in:\n{report}"))
}

#[test]
fn hooks_dependencies_and_conditions_are_carried() {
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("sd");
    std::fs::create_dir(&sd).unwrap();
    let files: Vec<PathBuf> = [
        (
            "app.service",
            "[Unit]\nWants=metrics.service\nBefore=web.service\nConflicts=old.service\n\
             ConditionPathExists=!/etc/app/disabled\nConditionKernelCommandLine=|app.on\n\
             AssertPathIsDirectory=/var/lib\nConditionFirstBoot=yes\n\
             ConditionVirtualization=kvm\n\
             [Service]\nEnvironment=CONF=/etc/app.conf\n\
             ExecStartPre=-/usr/bin/app-check ${CONF}\nExecStartPre=/bin/mkdir -p /run/app\n\
             ExecStartPost=+/bin/echo started\nExecStart=/usr/bin/app\n\
             ExecReload=/bin/kill -HUP $MAINPID\nExecStop=/usr/bin/app-ctl stop\n\
             ExecStopPost=/bin/true\n",
        ),
        ("metrics.service", "[Service]\nExecStart=/bin/sleep 100\n"),
        ("web.service", "[Service]\nExecStart=/bin/sleep 100\n"),
        ("old.service", "[Service]\nExecStart=/bin/sleep 100\n"),
    ]
    .iter()
    .map(|(n, t)| {
        let p = sd.join(n);
        std::fs::write(&p, t).unwrap();
        p
    })
    .collect();
    let out = dir.path().join("units");
    let (code, rep) = import(&files, &out);
    assert_eq!(code, 0, "{rep}");
    let u = units::parse::load_file(&out.join("app.unit")).expect("valid unit");
    let cmds = |v: &[&str]| -> Vec<_> { v.iter().map(|l| parse_hook_line(l).unwrap()).collect() };
    assert_eq!(
        u.hooks.start_pre,
        cmds(&[
            "-/usr/bin/app-check /etc/app.conf",
            "/bin/mkdir -p /run/app"
        ])
    );
    assert_eq!(u.hooks.start_post, cmds(&["/bin/echo started"]));
    assert_eq!(u.hooks.reload, cmds(&["/bin/kill -HUP $MAINPID"]));
    assert_eq!(u.hooks.stop, cmds(&["/usr/bin/app-ctl stop"]));
    assert_eq!(u.links.wants, ["metrics"]);
    assert_eq!(u.links.before, ["web"]);
    assert_eq!(u.links.conflicts, ["old"]);
    let conds: Vec<(Check, &str, bool, bool, bool)> = u
        .conditions
        .iter()
        .map(|c| (c.check, c.arg.as_str(), c.negate, c.trigger, c.assert))
        .collect();
    assert_eq!(
        conds,
        [
            (Check::PathExists, "/etc/app/disabled", true, false, false),
            (Check::KernelCommandLine, "app.on", false, true, false),
            (Check::PathIsDirectory, "/var/lib", false, false, true),
        ]
    );
    assert!(line(&rep, "ExecStartPost=+/bin/echo").contains("approx"));
    assert!(line(&rep, "ExecReload=").contains("carried"));
    assert!(line(&rep, "ConditionFirstBoot").contains("NOT CARRIED"));
    assert!(line(&rep, "ConditionVirtualization=kvm").contains("NOT CARRIED"));
    assert!(line(&rep, "ExecStopPost").contains("NOT CARRIED"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_colonyctl"))
        .arg("check")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
