//! Nothing panics on any input: random text, mutated example units, random key/value
//! documents; and cycle detection agrees with a naive reachability check on random graphs.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;
use units::parse::{parse_unit, SECTIONS, TOP_KEYS};

const EXAMPLES: &[&str] = &[
    include_str!("../../examples/units/web.unit"),
    include_str!("../../examples/units/worker.unit"),
    include_str!("../../examples/units/tick.unit"),
    include_str!("../../examples/units/greeter.unit"),
    include_str!("full.unit.txt"),
];

fn parse(text: &str) {
    // The result may be anything; it must be a result.
    let r = parse_unit(Path::new("/x/fuzz.unit"), text);
    if let Err(errs) = r {
        assert!(!errs.is_empty());
        for e in errs {
            // Every diagnostic is one line at a real position.
            let line = e.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(e.line >= 1 && e.col >= 1);
            assert!(e.line <= text.lines().count().max(1) + 1, "{line}");
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Flip(usize, u8),
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "\n",
                "[",
                "]",
                "\"",
                "'",
                "=",
                "#",
                "[restart]\n",
                "[[timer]]\n",
                "\nexec = 1\n",
                "{",
                "}",
                ",",
                "0x7fffffffffffffff",
                "-9223372036854775808",
                "1e999",
                "nan",
                "\"\\u0000\"",
                "\u{fffd}",
                "é",
                "1979-05-27T07:32:00Z",
                "\"\"\"",
                "'''",
                ".",
            ])
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s.to_string())),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut b = text.as_bytes().to_vec();
    for m in muts {
        let len = b.len().max(1);
        match m {
            Mutation::Delete(a, n) => {
                let a = a % len;
                let e = (a + n).min(b.len());
                if a < e {
                    b.drain(a..e);
                }
            }
            Mutation::Duplicate(a, n) => {
                let a = a % len;
                let e = (a + n).min(b.len());
                if a < e {
                    let piece = b[a..e].to_vec();
                    b.splice(e..e, piece);
                }
            }
            Mutation::Flip(a, x) => {
                if !b.is_empty() {
                    let a = a % b.len();
                    b[a] ^= x | 1;
                }
            }
            Mutation::Insert(a, s) => {
                let a = a % (b.len() + 1);
                b.splice(a..a, s.bytes());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn key() -> impl Strategy<Value = String> {
    let mut known: Vec<String> = TOP_KEYS.iter().map(|s| s.to_string()).collect();
    for (s, keys) in SECTIONS {
        known.extend(keys.iter().map(|k| format!("{s}.{k}")));
        known.extend(keys.iter().map(|k| k.to_string()));
    }
    prop_oneof![
        4 => prop::sample::select(known),
        1 => "[a-z_.]{1,12}",
        1 => "\"[^\"\\\\]{0,8}\"",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "\"30s\"",
            "\"0\"",
            "\"1h 30m\"",
            "\"256M\"",
            "\"0%\"",
            "\"150%\"",
            "\"SIGTERM\"",
            "\"TERM\"",
            "\"CAP_CHOWN\"",
            "\"root\"",
            "\"0027\"",
            "\"0 3 * * *\"",
            "\"@daily\"",
            "\"* * * * * * *\"",
            "\"tcp\"",
            "\"notify\"",
            "\"file\"",
            "\"127.0.0.1:1\"",
            "\"http://a/\"",
            "\"/bin/true\"",
            "\"on-failure\"",
            "true",
            "false",
            "0",
            "-1",
            "255",
            "256",
            "9223372036854775807",
            "0o777",
            "0xff",
            "1.5",
            "inf",
            "-nan",
            "1979-05-27",
            "07:32:00",
            "[]",
            "{}",
            "\"\"",
            "\"a b\"",
        ])
        .prop_map(str::to_string),
        "\"[ -~]{0,16}\"".prop_map(|s| s.replace(['\\', '"'], "")),
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z]{1,6}", inner), 0..3).prop_map(|v| {
                let body: Vec<String> = v.into_iter().map(|(k, x)| format!("{k} = {x}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = String> {
    let section = prop::sample::select(
        SECTIONS
            .iter()
            .map(|(s, _)| s.to_string())
            .chain(["nope".to_string()])
            .collect::<Vec<_>>(),
    );
    let block = (
        prop::option::of(section),
        prop::collection::vec((key(), value()), 0..6),
    );
    (any::<bool>(), prop::collection::vec(block, 0..5)).prop_map(|(with_exec, blocks)| {
        let mut s = String::new();
        if with_exec {
            s.push_str("exec = [\"/bin/true\"]\n");
        }
        for (header, kvs) in blocks {
            if let Some(h) = header {
                s.push_str(&format!("[{h}]\n"));
            }
            for (k, v) in kvs {
                s.push_str(&format!("{k} = {v}\n"));
            }
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(s in "(?s).{0,300}") {
        parse(&s);
    }

    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
        parse(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn mutated_examples_never_panic(
        i in 0..EXAMPLES.len(),
        muts in prop::collection::vec(mutation(), 1..8),
    ) {
        parse(&apply(EXAMPLES[i], &muts));
    }

    #[test]
    fn random_documents_never_panic(doc in document()) {
        parse(&doc);
    }

    #[test]
    fn cycles_are_exactly_the_units_that_reach_themselves(
        edges in prop::collection::vec((0usize..8, 0usize..8, any::<bool>()), 0..16),
    ) {
        let n = 8;
        let mut set = units::validate::UnitSet::new();
        for i in 0..n {
            let mut after = Vec::new();
            let mut requires = Vec::new();
            for &(a, b, req) in &edges {
                if a == i && a != b {
                    if req { requires.push(format!("u{b}")) } else { after.push(format!("u{b}")) }
                }
            }
            let text = format!(
                "exec = [\"/bin/true\"]\nafter = {after:?}\nrequires = {requires:?}\n"
            );
            let u = parse_unit(Path::new(&format!("/nonexistent/u{i}.unit")), &text);
            prop_assert!(u.is_ok(), "{text}");
            set.insert(format!("u{i}"), u);
        }
        units::validate::validate_set(&mut set);
        // Naive: u is on a cycle iff u reaches itself.
        let adj = |i: usize| -> BTreeSet<usize> {
            edges.iter().filter(|(a, b, _)| *a == i && a != b).map(|(_, b, _)| *b).collect()
        };
        for i in 0..n {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<usize> = adj(i).into_iter().collect();
            let mut reaches = false;
            while let Some(v) = stack.pop() {
                if v == i { reaches = true; break; }
                if seen.insert(v) { stack.extend(adj(v)); }
            }
            let r = &set[&format!("u{i}")];
            prop_assert_eq!(r.is_err(), reaches, "u{}: {:?}", i, r.as_ref().err());
            if let Err(e) = r {
                let head = format!("dependency cycle: u{i} -> ");
                let tail = format!(" -> u{i}");
                prop_assert!(e[0].message.starts_with(&head));
                prop_assert!(e[0].message.contains(&tail));
            }
        }
    }
}
