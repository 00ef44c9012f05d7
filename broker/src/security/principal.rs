//! Principals: `User:<name>` as Kafka's `KafkaPrincipal`, the X.500 distinguished name
//! of a client certificate in Java's RFC 2253 form (`X500Principal.getName()`), and
//! `ssl.principal.mapping.rules` (Kafka's `SslPrincipalMapper`).
//!
//! RFC 2253 form, as Java prints it: RDNs from last to first (most specific first), `,`
//! between RDNs and `+` inside a multi-valued one, the keywords CN C L ST O OU STREET DC
//! UID and dotted OIDs otherwise; a dotted-OID value (e.g. emailAddress) is `#` + the hex
//! of its DER encoding; `, + " \ < > ;` are escaped with `\`, as are a leading `#` or
//! space and a trailing space.

use x509_parser::prelude::*;

/// The principal of an unauthenticated connection (PLAINTEXT, SSL without a client
/// certificate).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The RFC 2253 string of a DER certificate's subject; `None` if it does not parse.
pub fn subject_rfc2253(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let part = match (keyword(&oid), atv.as_str()) {
                (Some(k), Ok(s)) => format!("{k}={}", escape(s)),
                _ => {
                    use x509_parser::der_parser::asn1_rs::ToDer;
                    let der = atv.attr_value().to_der_vec().ok()?;
                    format!("{oid}=#{}", hex(&der))
                }
            };
            parts.push(part);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Map {
        /// Anchored pattern for the whole-name match (Java `Matcher.matches`).
        full: regex::Regex,
        /// The pattern itself, for `replaceAll`.
        pattern: regex::Regex,
        /// Replacement with Java's `$n` turned into `${n}`.
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules`: the first rule whose pattern matches the whole DN
/// gives the name; `DEFAULT` gives the DN unchanged. When no rule applies the login
/// fails, as in Kafka.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
    source: String,
}

impl Default for SslPrincipalMapper {
    fn default() -> Self {
        Self {
            rules: vec![Rule::Default],
            source: "DEFAULT".into(),
        }
    }
}

/// Reads up to an unescaped `/`; returns (text with `\/` unescaped, rest after `/`).
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, n) = chars.next()?;
                if n != '/' {
                    out.push('\\');
                }
                out.push(n);
            }
            '/' => return Some((out, &s[i + 1..])),
            _ => out.push(c),
        }
    }
    None
}

fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut num = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                num.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{num}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

impl SslPrincipalMapper {
    /// Parses the rules (`DEFAULT` and `RULE:pattern/replacement/[LU]`, comma separated).
    pub fn parse(rules: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("RULE:") {
                let (pat, r) = until_slash(r).ok_or_else(|| format!("invalid rule: {rest}"))?;
                let (rep, r) = until_slash(r).ok_or_else(|| format!("invalid rule: {rest}"))?;
                let (case, r) = match r.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &r[1..]),
                    _ => (None, r),
                };
                let full = regex::Regex::new(&format!("^(?:{pat})$"))
                    .map_err(|e| format!("invalid rule pattern {pat}: {e}"))?;
                let pattern = regex::Regex::new(&pat)
                    .map_err(|e| format!("invalid rule pattern {pat}: {e}"))?;
                out.push(Rule::Map {
                    full,
                    pattern,
                    replacement: java_replacement(&rep),
                    case,
                });
                rest = r;
            } else {
                return Err(format!("invalid rule: {rest}"));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("invalid rule: {rest}")),
            }
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(Self {
            rules: out,
            source: rules.to_string(),
        })
    }

    /// The short name for `dn`, or an error when no rule applies.
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Map {
                    full,
                    pattern,
                    replacement,
                    case,
                } => {
                    if full.is_match(dn) {
                        let r = pattern.replace_all(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Some('L') => r.to_lowercase(),
                            Some('U') => r.to_uppercase(),
                            _ => r,
                        });
                    }
                }
            }
        }
        Err(format!("No rules apply to {dn}, rules {}", self.source))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kafka_mapping_rule_examples() {
        // The examples of Kafka's documentation and SslPrincipalMapperTest.
        let m = SslPrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.name("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(),
            "Duke"
        );
        assert_eq!(
            m.name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(),
            "duke@sme"
        );
        assert_eq!(
            m.name("cn=duke,ou=JavaSoft,o=Sun Microsystems").unwrap(),
            "duke"
        );
        assert_eq!(
            m.name("OU=JavaSoft,O=Sun Microsystems").unwrap(),
            "OU=JavaSoft,O=Sun Microsystems"
        );
        let upper = SslPrincipalMapper::parse("RULE:^CN=(.*),O=.*$/$1/U").unwrap();
        assert_eq!(upper.name("CN=alice,O=x").unwrap(), "ALICE");
        assert!(upper.name("OU=x").is_err());
        let slash = SslPrincipalMapper::parse("RULE:^CN=(.*)$/$1\\/svc/").unwrap();
        assert_eq!(slash.name("CN=a").unwrap(), "a/svc");
    }

    #[test]
    fn invalid_rules_refused() {
        assert!(SslPrincipalMapper::parse("RULE:^CN=(.*)$").is_err());
        assert!(SslPrincipalMapper::parse("BOGUS").is_err());
        assert!(SslPrincipalMapper::parse("RULE:(/x/").is_err());
        assert_eq!(
            SslPrincipalMapper::parse("").unwrap().name("CN=a").unwrap(),
            "CN=a"
        );
    }

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" #x "), "\\ #x\\ ");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(java_replacement("$1@$2$"), "${1}@${2}$$");
    }
}
