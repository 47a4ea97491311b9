use super::ini::wild;
use super::*;

#[test]
fn expansions() {
    let mut v = BTreeMap::new();
    v.insert("program_name".to_string(), "w".to_string());
    v.insert("process_num".to_string(), "3".to_string());
    assert_eq!(
        expand("%(program_name)s_%(process_num)02d", &v).unwrap(),
        "w_03"
    );
    assert_eq!(expand("100%% %(process_num)d", &v).unwrap(), "100% 3");
    assert!(expand("%(nope)s", &v).is_err());
}

#[test]
fn environment() {
    assert_eq!(
        env_pairs(r#"A="1,2",B=x, C='y z'"#).unwrap(),
        vec![
            ("A".into(), "1,2".into()),
            ("B".into(), "x".into()),
            ("C".into(), "y z".into())
        ]
    );
}

#[test]
fn log_sizes_and_counts_past_colonys_limits_are_brought_within() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("s.conf");
    std::fs::write(
        &f,
        "[program:chatty]\ncommand=/bin/true\nstdout_logfile_maxbytes=1KB\nstdout_logfile_backups=500\n",
    )
    .unwrap();
    let b = import(&[f]).unwrap();
    let text = b.drafts[0].render();
    let u = units::parse::parse_unit(Path::new("/u/chatty.unit"), &text)
        .unwrap_or_else(|e| panic!("{text}\n{}", units::diag::render(&e)));
    assert_eq!((u.log.max_size, u.log.keep), (MIN_LOG_SIZE, MAX_LOG_KEEP));
}

#[test]
fn wildcards() {
    assert!(wild("*.conf", "a.conf"));
    assert!(!wild("*.conf", "a.ini"));
    assert!(wild("w[0-9]?.ini", "w1x.ini"));
}
