//! `load_credential = { NAME = "" }`: a credential looked up by name in the credential
//! stores (systemd's `LoadCredential=ID`), on a real colony-init with stores of the test's
//! own (`--credstore`, in the order given): the first store that has it wins, another name
//! can be looked up (`"OTHER"`), and one no store has is left out without failing the start.

use std::path::Path;

use colony_integration::{wait_for, Colony, SOON};

#[test]
fn credentials_by_name_come_from_the_first_store_that_has_them() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to chown and mount");
        return;
    }
    let mut c = Colony::new();
    let (first, second) = (c.dir.path().join("store1"), c.dir.path().join("store2"));
    for d in [&first, &second] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(first.join("token"), "from-first\n").unwrap();
    std::fs::write(second.join("token"), "from-second\n").unwrap();
    std::fs::write(second.join("app.key"), "key-in-second\n").unwrap();
    for d in [&first, &second] {
        c.extra_args
            .extend(["--credstore".to_string(), d.display().to_string()]);
    }
    let out = c.dir.path().join("cred.out");
    let script = format!(
        "cd \"$CREDENTIALS_DIRECTORY\" && {{ cat token key; ls; }} > {}.tmp && mv {0}.tmp {0}; exec sleep 100000",
        out.display()
    );
    c.write_unit(
        "creds",
        &format!(
            "exec = [\"/bin/sh\", \"-c\", '''{script}''']\nload_credential = {{ token = \"\", key = \"app.key\", absent = \"\" }}\n"
        ),
    );
    let c = c.start();
    c.wait_state("creds", "running");
    let text = wait_for("the unit's output", SOON, || {
        std::fs::read_to_string(&out).ok()
    });
    // Both files read, and the directory holds exactly the two found.
    assert_eq!(text, "from-first\nkey-in-second\nkey\ntoken\n");
    // The stores are left as they were.
    assert!(Path::new(&second.join("token")).exists());
}
