//! JAAS configuration as Kafka reads it: the inline `sasl.jaas.config` value
//! (`<LoginModule class> <flag> key="value" ... ;`) and JAAS files
//! (`Section { <entries> };`, e.g. the `KafkaServer` section of the file named by
//! `-Djava.security.auth.login.config=` in `KAFKA_OPTS`).
//!
//! Values are quoted strings (`"..."`, with `\"` and `\\` escapes) or bare tokens; comments
//! (`//` to end of line and `/* ... */`) are skipped, as Java's `ConfigFile` parser does.

use std::collections::BTreeMap;

/// One login module entry.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JaasEntry {
    /// Options hold passwords: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasEntry")
            .field("login_module", &self.login_module)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Sym(char),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' || c == '\'' {
            let quote = c;
            i += 1;
            let mut v = String::new();
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quoted value".into()),
                    Some('\\') => {
                        if let Some(n) = chars.get(i + 1) {
                            v.push(*n);
                        }
                        i += 2;
                    }
                    Some(ch) if *ch == quote => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        v.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Quoted(v));
        } else if matches!(c, '=' | ';' | '{' | '}') {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '=' | ';' | '{' | '}' | '"')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

/// Parses entries until `}` or the end; consumes the tokens it used.
fn parse_entries(toks: &[Tok], pos: &mut usize) -> Result<Vec<JaasEntry>, String> {
    let mut entries = Vec::new();
    loop {
        match toks.get(*pos) {
            None | Some(Tok::Sym('}')) => return Ok(entries),
            Some(Tok::Word(module)) => {
                let module = module.clone();
                *pos += 1;
                let flag = match toks.get(*pos) {
                    Some(Tok::Word(f)) => f.clone(),
                    _ => return Err(format!("login module {module} has no control flag")),
                };
                let flag_l = flag.to_ascii_lowercase();
                if !matches!(
                    flag_l.as_str(),
                    "required" | "requisite" | "sufficient" | "optional"
                ) {
                    return Err(format!("invalid control flag {flag} for {module}"));
                }
                *pos += 1;
                let mut options = BTreeMap::new();
                loop {
                    match toks.get(*pos) {
                        Some(Tok::Sym(';')) => {
                            *pos += 1;
                            break;
                        }
                        Some(Tok::Word(k)) => {
                            let k = k.clone();
                            if toks.get(*pos + 1) != Some(&Tok::Sym('=')) {
                                return Err(format!("option {k} of {module} has no value"));
                            }
                            let v = match toks.get(*pos + 2) {
                                Some(Tok::Word(v)) | Some(Tok::Quoted(v)) => v.clone(),
                                _ => return Err(format!("option {k} of {module} has no value")),
                            };
                            options.insert(k, v);
                            *pos += 3;
                        }
                        _ => return Err(format!("entry for {module} does not end with ';'")),
                    }
                }
                entries.push(JaasEntry {
                    login_module: module,
                    flag: flag_l,
                    options,
                });
            }
            Some(t) => return Err(format!("unexpected {t:?} in JAAS configuration")),
        }
    }
}

/// Parses an inline `sasl.jaas.config` value. Kafka requires exactly one entry.
pub fn parse_inline(value: &str) -> Result<JaasEntry, String> {
    let toks = tokenize(value)?;
    let mut pos = 0;
    let mut entries = parse_entries(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err("unexpected text after the login module entry".into());
    }
    if entries.len() != 1 {
        return Err(format!(
            "JAAS config property must contain 1 login module, it contains {}",
            entries.len()
        ));
    }
    Ok(entries.remove(0))
}

/// Parses a JAAS file into its sections (`Name { entries };`).
pub fn parse_file(text: &str) -> Result<BTreeMap<String, Vec<JaasEntry>>, String> {
    let toks = tokenize(text)?;
    let mut pos = 0;
    let mut sections = BTreeMap::new();
    while pos < toks.len() {
        let name = match &toks[pos] {
            Tok::Word(n) => n.clone(),
            t => return Err(format!("expected a section name, found {t:?}")),
        };
        if toks.get(pos + 1) != Some(&Tok::Sym('{')) {
            return Err(format!("section {name} does not start with '{{'"));
        }
        pos += 2;
        let entries = parse_entries(&toks, &mut pos)?;
        if toks.get(pos) != Some(&Tok::Sym('}')) {
            return Err(format!("section {name} does not end with '}}'"));
        }
        pos += 1;
        if toks.get(pos) == Some(&Tok::Sym(';')) {
            pos += 1;
        }
        sections.insert(name, entries);
    }
    Ok(sections)
}

/// The JAAS file Kafka would read: `-Djava.security.auth.login.config=<path>` in
/// `KAFKA_OPTS`.
pub fn jaas_file_from_kafka_opts(kafka_opts: &str) -> Option<String> {
    kafka_opts
        .split_whitespace()
        .find_map(|a| a.strip_prefix("-Djava.security.auth.login.config="))
        .map(|p| p.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inline_plain_config() {
        let e = parse_inline(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret" user_admin="admin-secret"
               user_alice='al"ice' user_bob=bobpw;"#,
        )
        .unwrap();
        assert_eq!(
            e.login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(e.flag, "required");
        assert_eq!(e.options["username"], "admin");
        assert_eq!(e.options["user_alice"], "al\"ice");
        assert_eq!(e.options["user_bob"], "bobpw");
        assert!(!format!("{e:?}").contains("admin-secret"));
    }

    #[test]
    fn inline_errors() {
        assert!(parse_inline("a.B required x=\"1\"").is_err());
        assert!(parse_inline("a.B bogus;").is_err());
        assert!(parse_inline("a.B required; c.D required;").is_err());
        assert!(parse_inline("a.B required x;").is_err());
        assert!(parse_inline("a.B required x=\"open;").is_err());
    }

    #[test]
    fn file_sections_and_comments() {
        let f = r#"
            // the broker side
            KafkaServer {
                org.apache.kafka.common.security.plain.PlainLoginModule required
                username="admin"
                password="pw" /* inline comment */
                user_admin="pw";
                org.apache.kafka.common.security.scram.ScramLoginModule required;
            };
            Client { x.Y optional; };
        "#;
        let s = parse_file(f).unwrap();
        assert_eq!(s["KafkaServer"].len(), 2);
        assert_eq!(s["KafkaServer"][0].options["user_admin"], "pw");
        assert_eq!(s["Client"][0].flag, "optional");
        assert!(parse_file("KafkaServer { a.B required; ").is_err());
    }

    #[test]
    fn kafka_opts_path() {
        assert_eq!(
            jaas_file_from_kafka_opts("-Xmx1g -Djava.security.auth.login.config=/etc/k/jaas.conf"),
            Some("/etc/k/jaas.conf".into())
        );
        assert_eq!(jaas_file_from_kafka_opts("-Xmx1g"), None);
    }
}
