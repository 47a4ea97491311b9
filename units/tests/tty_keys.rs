//! `[tty]` in its valid and invalid forms.

use std::path::Path;

use units::model::Unit;
use units::parse::parse_unit;
use units::tty::{Output, Tty};

fn parse(text: &str) -> Result<Unit, String> {
    parse_unit(
        Path::new("/etc/colony/units/t.unit"),
        &format!("exec = [\"/sbin/agetty\"]\n{text}"),
    )
    .map_err(|d| units::diag::render(&d))
}

#[test]
fn tty_section() {
    let u = parse("[tty]\npath = \"/dev/tty1\"\nreset = true\nvhangup = true\n").unwrap();
    let t = u.tty.as_deref().unwrap();
    assert_eq!(t.path, Path::new("/dev/tty1"));
    assert_eq!(t.output, Output::Tty);
    assert!(t.reset && t.vhangup && !t.force);
    // Defaults: the console, output on it.
    let u = parse("[tty]\n").unwrap();
    assert_eq!(u.tty.as_deref(), Some(&Tty::default()));
    let u = parse("[tty]\noutput = \"log\"\nforce = true\n").unwrap();
    let t = u.tty.as_deref().unwrap();
    assert_eq!((t.output, t.force), (Output::Log, true));
    assert!(parse("").unwrap().tty.is_none());
    for (text, said) in [
        ("[tty]\npath = \"/etc/passwd\"", "not a terminal below /dev"),
        (
            "[tty]\npath = \"/dev/../etc/x\"",
            "not a terminal below /dev",
        ),
        ("[tty]\noutput = \"file\"", "expected \"tty\""),
        ("[tty]\nreset = \"yes\"", "true or false"),
        ("[tty]\nbaud = 9600", "unknown key"),
    ] {
        let e = parse(text).expect_err(text);
        assert!(e.contains(said), "{text}: {e}");
    }
}
