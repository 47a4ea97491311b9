//! The state changes the core reports for the event stream.

use super::*;

fn moves(f: &Fake) -> Vec<(String, Option<State>, Option<State>)> {
    f.changes
        .iter()
        .map(|c| (c.unit.clone(), c.from, c.to))
        .collect()
}

#[test]
fn every_transition_is_reported_once_in_order() {
    let mut f = Fake::new();
    f.load(vec![unit("a").delays(secs(1), secs(60))]);
    let a = || "a".to_string();
    assert_eq!(
        moves(&f),
        vec![
            (a(), None, Some(State::Stopped)),
            (a(), Some(State::Stopped), Some(State::Starting)),
            (a(), Some(State::Starting), Some(State::Running)),
        ]
    );
    let pid = f.rec("a").pid;
    assert!(pid.is_some());
    assert_eq!(f.changes[2].pid, pid);

    f.changes.clear();
    f.exit("a", 3);
    let c = f.changes.last().cloned().expect("a change");
    assert_eq!((c.from, c.to), (Some(State::Running), Some(State::Backoff)));
    assert_eq!(c.reason.as_deref(), Some("exited with code 3"));
    assert_eq!(c.at, f.wall(f.t));

    f.changes.clear();
    f.advance(secs(1));
    assert_eq!(
        moves(&f),
        vec![
            (a(), Some(State::Backoff), Some(State::Starting)),
            (a(), Some(State::Starting), Some(State::Running)),
        ]
    );
    assert_eq!(f.changes[1].restarts, 1);
}

#[test]
fn a_removed_unit_ends_with_no_state() {
    let mut f = Fake::new();
    f.load(vec![unit("a"), unit("b")]);
    f.changes.clear();
    f.load(vec![unit("b")]);
    let last = f.changes.last().cloned().expect("a change");
    assert_eq!(last.unit, "a");
    assert_eq!((last.from, last.to), (Some(State::Stopped), None));
    assert!(
        moves(&f).iter().all(|(u, _, _)| u == "a"),
        "{:?}",
        moves(&f)
    );
}

#[test]
fn inputs_that_change_nothing_report_nothing() {
    let mut f = Fake::new();
    f.load(vec![unit("a")]);
    f.changes.clear();
    f.send(Input::Beat { unit: "a".into() });
    f.cmd(Command::Start("a".into()));
    assert_eq!(moves(&f), vec![]);
    assert!(f.sup.changes().is_empty());
}
