//! systemd's word splitting, shared by the hook keys (`exec_start_pre` etc., whose lines are
//! split as systemd splits `ExecStartPre=`) and colonyctl's importer.

/// Split a systemd command line or `Environment=` value into words: whitespace separates,
/// `"..."` and `'...'` quote (anywhere in a word), and C escapes (`\n`, `\t`, `\xNN`, `\NNN`,
/// `\uXXXX`, `\s`, `\\`, `\"`, `\'`) are decoded, as systemd's `extract_first_word` does with
/// unquoting and C unescaping.
pub fn systemd_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                in_word = true;
                let Some(e) = it.next() else {
                    return Err("ends with a lone backslash".into());
                };
                match e {
                    'a' => cur.push('\u{7}'),
                    'b' => cur.push('\u{8}'),
                    'f' => cur.push('\u{c}'),
                    'n' => cur.push('\n'),
                    'r' => cur.push('\r'),
                    't' => cur.push('\t'),
                    'v' => cur.push('\u{b}'),
                    's' => cur.push(' '),
                    'x' => {
                        let h: String = (0..2).filter_map(|_| it.next()).collect();
                        let n = u32::from_str_radix(&h, 16)
                            .map_err(|_| format!("bad escape \\x{h}"))?;
                        cur.push(char::from_u32(n).ok_or("bad escape")?);
                    }
                    'u' | 'U' => {
                        let len = if e == 'u' { 4 } else { 8 };
                        let h: String = (0..len).filter_map(|_| it.next()).collect();
                        let n = u32::from_str_radix(&h, 16)
                            .map_err(|_| format!("bad escape \\{e}{h}"))?;
                        cur.push(char::from_u32(n).ok_or("bad escape")?);
                    }
                    '0'..='7' => {
                        let mut o = String::from(e);
                        for _ in 0..2 {
                            match it.peek() {
                                Some(d @ '0'..='7') => {
                                    o.push(*d);
                                    it.next();
                                }
                                _ => break,
                            }
                        }
                        let n = u32::from_str_radix(&o, 8).map_err(|_| "bad escape")?;
                        cur.push(char::from_u32(n).ok_or("bad escape")?);
                    }
                    other => cur.push(other),
                }
            }
            q @ ('"' | '\'') if quote.is_none() => {
                quote = Some(q);
                in_word = true;
            }
            q if Some(q) == quote => quote = None,
            c if c.is_whitespace() && quote.is_none() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("an opening quote is never closed".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}
