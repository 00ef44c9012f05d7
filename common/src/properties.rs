//! Java `.properties` files: the format of `server.properties` and `meta.properties`.
//!
//! Parsing follows `java.util.Properties.load`: lines starting (after leading
//! whitespace) with `#` or `!` are comments; key and value are separated by the
//! first unescaped `=`, `:` or whitespace (whitespace around the separator is
//! skipped); a line ending in an odd number of `\` continues on the next line
//! (whose leading whitespace is dropped); `\t \n \r \f \uXXXX` are decoded and any
//! other `\c` yields `c`. Later duplicates win.

use indexmap::IndexMap;
use std::fmt::Write as _;

use crate::error::{Error, Result};

/// Parsed properties, in file order (order only matters for writing).
pub type Properties = IndexMap<String, String>;

/// Parse the text of a `.properties` file.
pub fn parse(text: &str) -> Result<Properties> {
    let mut out = Properties::new();
    let mut lines = text
        .split(['\n'])
        .map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(first) = lines.next() {
        let trimmed = first.trim_start_matches([' ', '\t', '\x0c']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line (still escaped).
        let mut logical = String::from(trimmed);
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        out.insert(unescape(key)?, unescape(value)?);
    }
    Ok(out)
}

/// Parse one `key=value` pair the way a one-line properties file would (CLI `--override`).
pub fn parse_override(arg: &str) -> Result<(String, String)> {
    let props = parse(arg)?;
    match props.into_iter().next() {
        Some((k, v)) if !k.is_empty() && arg.contains('=') => Ok((k, v)),
        _ => Err(Error::Properties(format!(
            "override {arg:?} is not of the form key=value"
        ))),
    }
}

fn ends_with_continuation(s: &str) -> bool {
    let n = s.bytes().rev().take_while(|&b| b == b'\\').count();
    n % 2 == 1
}

/// Split an escaped logical line into escaped key and escaped value.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = bytes.len();
    let mut sep_is_ws = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' => {
                key_end = i;
                break;
            }
            b' ' | b'\t' | b'\x0c' => {
                key_end = i;
                sep_is_ws = true;
                break;
            }
            _ => i += 1,
        }
    }
    if key_end >= bytes.len() {
        return (line, "");
    }
    let key = &line[..key_end];
    let mut j = key_end;
    if sep_is_ws {
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
            j += 1;
        }
        if j < bytes.len() && matches!(bytes[j], b'=' | b':') {
            j += 1;
        }
    } else {
        j += 1;
    }
    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
        j += 1;
    }
    (key, &line[j..])
}

fn unescape(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    // A high surrogate from `\uD8xx` waiting for its low half (Java strings are UTF-16).
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_surrogate(&mut pending_high, &mut out);
            out.push(c);
            continue;
        }
        match chars.next() {
            None => {}
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .ok_or_else(|| {
                        Error::Properties(format!("malformed \\uxxxx escape: \\u{hex}"))
                    })?;
                match (pending_high.take(), code) {
                    (Some(high), 0xDC00..=0xDFFF) => {
                        let c = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00);
                        out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                    }
                    (prev, 0xD800..=0xDBFF) => {
                        if prev.is_some() {
                            out.push('\u{fffd}');
                        }
                        pending_high = Some(code);
                    }
                    (prev, _) => {
                        if prev.is_some() {
                            out.push('\u{fffd}');
                        }
                        // Unpaired low surrogates are not valid chars: U+FFFD.
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                }
            }
            Some(other) => {
                flush_surrogate(&mut pending_high, &mut out);
                out.push(match other {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    'f' => '\x0c',
                    c => c,
                });
            }
        }
    }
    flush_surrogate(&mut pending_high, &mut out);
    Ok(out)
}

fn flush_surrogate(pending_high: &mut Option<u32>, out: &mut String) {
    if pending_high.take().is_some() {
        out.push('\u{fffd}');
    }
}

fn escape(s: &str, is_key: bool, out: &mut String) {
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04X}", unit);
                }
            }
            c => out.push(c),
        }
    }
}

/// Render properties like `Properties.store`: an optional `#comment` line, then one
/// escaped `key=value` per line. (Java also writes a `#date` line; readers ignore it.)
pub fn write(props: &Properties, comment: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(c) = comment {
        for line in c.lines() {
            out.push('#');
            out.push_str(line);
            out.push('\n');
        }
    }
    for (k, v) in props {
        escape(k, true, &mut out);
        out.push('=');
        escape(v, false, &mut out);
        out.push('\n');
    }
    out
}

/// Read and parse a properties file.
pub fn load(path: &std::path::Path) -> Result<Properties> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(p: &'a Properties, k: &str) -> Option<&'a str> {
        p.get(k).map(|s| s.as_str())
    }

    #[test]
    fn separators_and_comments() {
        let p = parse(
            "# comment\n! also comment\n  \na=1\nb: 2\nc 3\nd = 4 \ne\t:  5\nf\ng=\n  h=indented\n",
        )
        .expect("parse");
        assert_eq!(get(&p, "a"), Some("1"));
        assert_eq!(get(&p, "b"), Some("2"));
        assert_eq!(get(&p, "c"), Some("3"));
        assert_eq!(get(&p, "d"), Some("4 "));
        assert_eq!(get(&p, "e"), Some("5"));
        assert_eq!(get(&p, "f"), Some(""));
        assert_eq!(get(&p, "g"), Some(""));
        assert_eq!(get(&p, "h"), Some("indented"));
        assert_eq!(p.len(), 8);
    }

    #[test]
    fn continuation_and_escapes() {
        let p = parse("listeners=PLAINTEXT://a:1,\\\n    PLAINTEXT://b:2\nk\\=x=v\\tw\nu=\\u0041\\u00e9\nbs=a\\\\\nnext=1\r\n")
            .expect("parse");
        assert_eq!(
            get(&p, "listeners"),
            Some("PLAINTEXT://a:1,PLAINTEXT://b:2")
        );
        assert_eq!(get(&p, "k=x"), Some("v\tw"));
        assert_eq!(get(&p, "u"), Some("Aé"));
        assert_eq!(get(&p, "bs"), Some("a\\"));
        assert_eq!(get(&p, "next"), Some("1"));
    }

    #[test]
    fn surrogate_pairs_join() {
        let p = parse("a=\\uD83D\\uDE00\nb=\\uD83Dx\n").expect("parse");
        assert_eq!(get(&p, "a"), Some("\u{1F600}"));
        assert_eq!(get(&p, "b"), Some("\u{fffd}x"));
    }

    #[test]
    fn bad_unicode_escape_is_error() {
        assert!(parse("a=\\u12").is_err());
        assert!(parse("a=\\uzzzz").is_err());
    }

    #[test]
    fn last_duplicate_wins() {
        let p = parse("a=1\na=2\n").expect("parse");
        assert_eq!(get(&p, "a"), Some("2"));
    }

    #[test]
    fn write_roundtrip() {
        let mut p = Properties::new();
        p.insert("version".into(), "0".into());
        p.insert("cluster.id".into(), "abc:def= x#".into());
        p.insert("k y".into(), " lead\u{e9}\n".into());
        let text = write(&p, Some("Written by Samsa"));
        assert!(text.starts_with("#Written by Samsa\n"));
        assert!(text.contains("version=0\n"));
        assert_eq!(parse(&text).expect("parse"), p);
    }

    proptest::proptest! {
        /// Whatever we write, Java (and we) read back unchanged.
        #[test]
        fn write_then_parse_roundtrips(
            entries in proptest::collection::vec(("[ -~\\t\\n\\u{e9}\\u{4e2d}]{1,12}", "[ -~\\t\\n\\u{e9}\\u{1F600}]{0,12}"), 0..8)
        ) {
            let mut p = Properties::new();
            for (k, v) in entries {
                p.insert(k, v);
            }
            let text = write(&p, None);
            proptest::prop_assert_eq!(parse(&text).expect("parse"), p);
        }
    }

    #[test]
    fn overrides() {
        assert_eq!(
            parse_override("broker.id=3").expect("ok"),
            ("broker.id".to_string(), "3".to_string())
        );
        assert_eq!(
            parse_override("a=b=c").expect("ok"),
            ("a".to_string(), "b=c".to_string())
        );
        assert!(parse_override("novalue").is_err());
    }
}
