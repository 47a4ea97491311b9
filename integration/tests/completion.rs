//! Shell completion against a running colony-init: bash, with the script of
//! `colonyctl completions bash` sourced, completes unit names and @tags for TARGET arguments.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use colony_integration::{bash_complete as complete, bin, Colony};

use colony_integration::skip_or_fail;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn bash_completes_unit_names_and_tags_of_the_running_colony() {
    let c = Colony::new();
    c.write_unit(
        "web",
        "exec = [\"/bin/sleep\", \"1000\"]\ntags = [\"front\", \"all\"]\n",
    );
    c.write_unit(
        "worker",
        "exec = [\"/bin/sleep\", \"1000\"]\ntags = [\"all\"]\n",
    );
    c.write_unit("db", "exec = [\"/bin/sleep\", \"1000\"]\nenabled = false\n");
    let c = c.start();
    c.wait_state("web", "running");

    let script = c.dir.path().join("colonyctl.bash");
    let o = Command::new(bin("colonyctl"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::write(&script, &o.stdout).unwrap();
    let run = c.run.to_str().unwrap();

    let all = sorted(
        ["db", "web", "worker", "@all", "@front"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    // The colony named by --run-dir on the command line.
    for verb in ["start", "stop", "restart", "status"] {
        let got = complete(&script, &["colonyctl", "--run-dir", run, verb, ""], None);
        assert_eq!(sorted(got), all, "{verb}");
    }
    // ... or by COLONY_RUN_DIR; a prefix narrows; later targets complete too.
    let got = complete(&script, &["colonyctl", "start", "w"], Some(&c.run));
    assert_eq!(sorted(got), ["web", "worker"]);
    let got = complete(&script, &["colonyctl", "stop", "web", "@"], Some(&c.run));
    assert_eq!(sorted(got), ["@all", "@front"]);
    // signal: the first argument is the signal, targets after it; logs: one unit.
    let got = complete(&script, &["colonyctl", "signal", "HUP", "d"], Some(&c.run));
    assert_eq!(got, ["db"]);
    let got = complete(&script, &["colonyctl", "logs", "wo"], Some(&c.run));
    assert_eq!(got, ["worker"]);
    // Subcommands and flags still come from the static part.
    let got = complete(&script, &["colonyctl", "rest"], Some(&c.run));
    assert_eq!(sorted(got), ["restart", "restart-all"]);
    let got = complete(&script, &["colonyctl", "start", "--no"], Some(&c.run));
    assert_eq!(got, ["--no-block"]);
    // The helper itself is not offered to people.
    let got = complete(&script, &["colonyctl", "__"], Some(&c.run));
    assert!(got.is_empty(), "{got:?}");

    zsh_completes(&c.run, &all);
    fish_completes(&c.run, &all);

    // No colony-init behind the directory: nothing offered, quickly, no error output.
    let gone = c.dir.path().join("nothing-here");
    let t = Instant::now();
    let got = complete(&script, &["colonyctl", "start", ""], Some(&gone));
    assert!(got.is_empty(), "{got:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let o = Command::new(bin("colonyctl"))
        .args(["--run-dir", gone.to_str().unwrap(), "__complete-targets"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn path_with_colonyctl() -> String {
    format!(
        "{}:{}",
        bin("colonyctl").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn script(shell: &str) -> String {
    let o = Command::new(bin("colonyctl"))
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

/// zsh: the target arguments of clap's `_arguments` specs call `_colonyctl_targets`, which
/// offers (compadd, stubbed to print) what the colony named on the command line has.
fn zsh_completes(run: &Path, all: &[String]) {
    if !have("zsh") {
        skip_or_fail!("SKIP zsh part: zsh is not installed (apt-get install zsh)");
        return;
    }
    let text = script("zsh");
    let calls = text
        .lines()
        .filter(|l| l.contains(":_colonyctl_targets'"))
        .count();
    // status, start, stop, restart, signal, logs, events, reload; remove, enable, disable, cat,
    // show.
    assert_eq!(calls, 13, "{text}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("_colonyctl");
    std::fs::write(&f, &text).unwrap();
    let prog = format!(
        "compdef() {{ : }}\n\
         source {f}\n\
         compadd() {{ print -rl -- \"${{(@P)2}}\" }}\n\
         BUFFER='colonyctl --run-dir {run} start '\n\
         _colonyctl_targets\n",
        f = f.display(),
        run = run.display()
    );
    let o = Command::new("zsh")
        .args(["-f", "-c", &prog])
        .env("PATH", path_with_colonyctl())
        .env_remove("COLONY_RUN_DIR")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "zsh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = sorted(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    );
    assert_eq!(got, all, "zsh");
}

/// fish: `complete -C` asks fish's own completion machinery, as a TAB would.
fn fish_completes(run: &Path, all: &[String]) {
    if !have("fish") {
        skip_or_fail!("SKIP fish part: fish is not installed (apt-get install fish)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("colonyctl.fish");
    std::fs::write(&f, script("fish")).unwrap();
    let ask = |line: &str| -> Vec<String> {
        let o = Command::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!("source {}; complete -C '{line}'", f.display()))
            .env("PATH", path_with_colonyctl())
            .env_remove("COLONY_RUN_DIR")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "fish: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        sorted(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_string())
                .collect(),
        )
    };
    let run = run.display();
    assert_eq!(
        ask(&format!("colonyctl --run-dir {run} stop ")),
        all,
        "fish"
    );
    assert_eq!(
        ask(&format!("colonyctl --run-dir {run} restart @")),
        ["@all", "@front"],
        "fish"
    );
    assert_eq!(ask("colonyctl rest"), ["restart", "restart-all"], "fish");
}
