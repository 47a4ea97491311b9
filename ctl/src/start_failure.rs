//! Why a `start`/`restart` failed: the error line says how each unit ended; here are the
//! last lines of its log, read from the log file itself (colony-init's reply only names it).

use std::io::Write;

use units::proto::StartFailure;

/// Lines of the log shown for a unit that did not start.
pub const LOG_LINES: usize = 10;

/// For each unit that ran and ended, the last [`LOG_LINES`] lines of its log.
pub fn report(failures: &[StartFailure], out: &mut impl Write) -> std::io::Result<()> {
    for f in failures.iter().filter(|f| f.last_exit.is_some()) {
        let Some(path) = f.log_file.as_deref() else {
            continue;
        };
        let tail =
            std::fs::File::open(path).and_then(|mut file| crate::logs::tail(&mut file, LOG_LINES));
        match tail {
            Ok(bytes) if bytes.is_empty() => writeln!(out, "{}: {path} is empty", f.name)?,
            Ok(bytes) => {
                writeln!(out, "{}: last lines of {path}:", f.name)?;
                for line in String::from_utf8_lossy(&bytes).lines() {
                    writeln!(out, "  {line}")?;
                }
            }
            Err(e) => writeln!(out, "{}: cannot read {path}: {e}", f.name)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use units::proto::LastExit;

    #[test]
    fn shows_the_last_lines_of_units_that_ran() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("web.log");
        let lines: String = (1..=12).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, lines).unwrap();
        let ran = StartFailure {
            name: "web".into(),
            state: "backoff".into(),
            last_exit: Some(LastExit {
                code: Some(1),
                ..Default::default()
            }),
            log_file: Some(log.display().to_string()),
        };
        let never = StartFailure {
            name: "app".into(),
            state: "stopped".into(),
            last_exit: None,
            log_file: Some("/nonexistent/app.log".into()),
        };
        let mut out = Vec::new();
        report(&[ran, never], &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with(&format!("web: last lines of {}:\n", log.display())),
            "{out}"
        );
        assert!(
            out.contains("  line 12\n") && out.contains("  line 3\n"),
            "{out}"
        );
        assert!(!out.contains("  line 2\n") && !out.contains("app"), "{out}");
    }
}
