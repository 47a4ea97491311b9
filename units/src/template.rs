//! Templates and instances. A file `NAME@.unit` is a template: `colonyctl start NAME@INST`
//! runs an instance of it, the file's text with systemd's specifiers filled in (`%i` the
//! instance, `%I` it unescaped, `%n`/`%N` the unit's name, `%p` the prefix NAME, `%%` a
//! percent sign). A unit with `instances = N` (Supervisor's `numprocs`) is N units
//! `NAME-0` .. `NAME-{N-1}`, with `%i` the number.

/// The instance a template is checked with (`colonyctl check NAME@.unit`).
pub const SAMPLE_INSTANCE: &str = "instance";

/// `instances` at most (each is a unit of its own).
pub const MAX_INSTANCES: u32 = 1024;

/// What the specifiers of one instance stand for.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// The part before `@` (or the unit's name for `instances = N`).
    pub prefix: &'a str,
    pub instance: &'a str,
    /// The instance's unit name.
    pub name: &'a str,
}

/// `P` of a template file name `P@.unit`.
pub fn template_file_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix("@.unit")
        .filter(|p| crate::parse::valid_unit_name(p))
}

/// An instance name `P@I`: `P` a unit name, `I` 1-64 characters of `A-Z a-z 0-9 _ . -`.
/// Returns `(P, I)`.
pub fn split_instance(name: &str) -> Option<(&str, &str)> {
    let (p, i) = name.split_once('@')?;
    let ok = crate::parse::valid_unit_name(p)
        && !i.is_empty()
        && i.len() <= 64
        && i.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    ok.then_some((p, i))
}

/// `text` with the specifiers of `spec` filled in; any other `%x` is left as written.
pub fn expand(text: &str, spec: Spec<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.peek().copied() {
            Some('i') => out.push_str(spec.instance),
            Some('I') => out.push_str(&unescape(spec.instance)),
            Some('n') | Some('N') => out.push_str(spec.name),
            Some('p') => out.push_str(spec.prefix),
            Some('%') => out.push('%'),
            _ => {
                out.push('%');
                continue;
            }
        }
        it.next();
    }
    out
}

/// systemd's unescaping of an instance (`%I`): `-` is `/`, `\xNN` a byte.
fn unescape(s: &str) -> String {
    let mut bytes = Vec::new();
    let b = s.as_bytes();
    let mut k = 0;
    while k < b.len() {
        if b[k] == b'-' {
            bytes.push(b'/');
        } else if b[k] == b'\\' && k + 3 < b.len() && b.get(k + 1) == Some(&b'x') {
            match std::str::from_utf8(&b[k + 2..k + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    bytes.push(v);
                    k += 4;
                    continue;
                }
                None => bytes.push(b[k]),
            }
        } else {
            bytes.push(b[k]);
        }
        k += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The names of the units of `name` with `instances = n`.
pub fn numbered(name: &str, n: u32) -> impl Iterator<Item = (String, String)> + '_ {
    (0..n).map(move |k| (format!("{name}-{k}"), k.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_fill_in_and_others_stay() {
        let spec = Spec {
            prefix: "getty",
            instance: "tty1",
            name: "getty@tty1",
        };
        assert_eq!(
            expand("exec = [\"/sbin/agetty\", \"%i\"] # %n %p %% 50% %x", spec),
            "exec = [\"/sbin/agetty\", \"tty1\"] # getty@tty1 getty % 50% %x"
        );
        let spec = Spec {
            prefix: "mnt",
            instance: "srv-data",
            name: "mnt@srv-data",
        };
        assert_eq!(expand("%I", spec), "srv/data");
    }

    #[test]
    fn names() {
        assert_eq!(template_file_name("getty@.unit"), Some("getty"));
        assert_eq!(template_file_name("getty.unit"), None);
        assert_eq!(template_file_name("@.unit"), None);
        assert_eq!(split_instance("getty@tty1"), Some(("getty", "tty1")));
        assert_eq!(split_instance("getty@"), None);
        assert_eq!(split_instance("getty@a/b"), None);
        assert_eq!(split_instance("getty"), None);
        let v: Vec<_> = numbered("web", 2).map(|(n, _)| n).collect();
        assert_eq!(v, ["web-0", "web-1"]);
    }
}
