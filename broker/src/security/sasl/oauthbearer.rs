//! SASL/OAUTHBEARER with Kafka's unsecured-JWT validator, as Kafka 3.9's
//! `OAuthBearerSaslServer` with `OAuthBearerUnsecuredValidatorCallbackHandler` (the server
//! callback handler Kafka uses when none is configured). Meant for development and tests, as
//! in Kafka: the token is not signed, so anyone may claim any principal.
//!
//! The client's first message is `n,[a=<authzid>],\x01auth=Bearer <jws>\x01[k=v\x01]...\x01`.
//! The JWS is `base64(header).base64(claims).` with `"alg":"none"` and no signature. Checked:
//! the principal claim (`sub` unless `unsecuredValidatorPrincipalClaimName`) is a non-blank
//! string, `exp` is present and not past, `iat` (optional) is not in the future and precedes
//! `exp`, and the scope claim holds every `unsecuredValidatorRequiredScope` element, all with
//! `unsecuredValidatorAllowableClockSkewMs` of slack. A rejected token is answered with
//! Kafka's JSON error (`{"status":"invalid_token"}`) as a challenge; the client's `\x01` reply
//! then fails the exchange with that JSON as the message. The session ends at `exp`.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::Value;

/// Kafka decodes the JWS parts with Java's basic (not URL-safe) decoder, padding optional.
const JWS_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The JAAS login module an OAUTHBEARER listener names (its options configure the validator).
pub const MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// `OAuthBearerUnsecuredValidatorCallbackHandler`'s JAAS options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredValidator {
    principal_claim: String,
    scope_claim: String,
    required_scope: Vec<String>,
    clock_skew_ms: i64,
}

impl Default for UnsecuredValidator {
    fn default() -> Self {
        Self {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            clock_skew_ms: 0,
        }
    }
}

fn option(options: &BTreeMap<String, String>, key: &str) -> Option<String> {
    options
        .get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Scope elements of a space-delimited string (`OAuthBearerScopeUtils.parseScope`).
fn parse_scope(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|e| !e.trim().is_empty())
        .map(str::to_string)
        .collect()
}

impl UnsecuredValidator {
    /// From the JAAS entry's options; a bad clock skew is a start-up error, as Kafka's
    /// `OAuthBearerConfigException`.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let d = Self::default();
        let clock_skew_ms = match option(options, "unsecuredValidatorAllowableClockSkewMs") {
            None => 0,
            Some(v) => {
                let n: i32 = v.parse().map_err(|e| {
                    format!("unsecuredValidatorAllowableClockSkewMs: {e} (\"{v}\")")
                })?;
                if n < 0 {
                    return Err(format!(
                        "Allowable clock skew millis must not be negative: {v}"
                    ));
                }
                i64::from(n)
            }
        };
        Ok(Self {
            principal_claim: option(options, "unsecuredValidatorPrincipalClaimName")
                .unwrap_or(d.principal_claim),
            scope_claim: option(options, "unsecuredValidatorScopeClaimName")
                .unwrap_or(d.scope_claim),
            required_scope: option(options, "unsecuredValidatorRequiredScope")
                .map(|s| parse_scope(&s))
                .unwrap_or_default(),
            clock_skew_ms,
        })
    }

    /// Validates a compact-serialized unsecured JWS at `now_ms`: `(principal name, expiry
    /// in ms)`, or the JSON error to send and the reason to log.
    pub fn validate(&self, jws: &str, now_ms: i64) -> Result<(String, i64), (String, String)> {
        let invalid = |why: String| ("{\"status\":\"invalid_token\"}".to_string(), why);
        let claims = parse_jws(jws).map_err(invalid)?;
        let number = |name: &str| -> Result<Option<f64>, String> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(other) => Err(format!(
                    "The '{name}' claim was not of type Number: {}",
                    json_type(other)
                )),
            }
        };
        // Scope first: the constructor computes it before the times.
        let scope: Vec<String> = match claims.get(&self.scope_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if s.trim().is_empty() => Vec::new(),
            Some(Value::String(s)) => vec![s.trim().to_string()],
            Some(Value::Array(a)) => a
                .iter()
                .map(json_text)
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().to_string())
                .collect(),
            Some(other) => {
                return Err(invalid(format!(
                    "The '{}' claim was not of type List: {}",
                    self.scope_claim,
                    json_type(other)
                )))
            }
        };
        let exp = number("exp")
            .map_err(invalid)?
            .ok_or_else(|| invalid("No expiration time in JWT".into()))?;
        let principal = match claims.get(&self.principal_claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(invalid(format!(
                    "The '{}' claim was not of type String: {}",
                    self.principal_claim,
                    json_type(other)
                )))
            }
        }
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            invalid(format!(
                "No principal name in JWT claim: {}",
                self.principal_claim
            ))
        })?;
        let iat = number("iat").map_err(invalid)?;
        let exp_ms = (exp * 1000.0).round() as i64;
        if let Some(iat) = iat {
            if 1000.0 * iat > (now_ms + self.clock_skew_ms) as f64 {
                return Err(invalid(format!(
                    "The Issued At value ({iat} seconds) was after the indicated time \
                     ({now_ms} ms) plus allowable clock skew ({} ms)",
                    self.clock_skew_ms
                )));
            }
        }
        if (now_ms - self.clock_skew_ms) as f64 >= 1000.0 * exp {
            return Err(invalid(format!(
                "The indicated time ({now_ms} ms) minus allowable clock skew ({} ms) was on or \
                 after the Expiration Time value ({exp} seconds)",
                self.clock_skew_ms
            )));
        }
        if let Some(iat) = iat {
            if exp_ms <= (iat * 1000.0).round() as i64 {
                return Err(invalid(format!(
                    "The Expiration Time time ({exp} seconds) was not after the Issued At time \
                     ({iat} seconds)"
                )));
            }
        }
        if let Some(missing) = self.required_scope.iter().find(|r| !scope.contains(r)) {
            return Err((
                format!("{{\"status\":\"insufficient_scope\", \"scope\":\"{missing}\"}}"),
                format!("The provided scope ({scope:?}) was missing a required scope ({missing})"),
            ));
        }
        Ok((principal, exp_ms))
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "String",
        Value::Number(_) => "Number",
        Value::Array(_) => "List",
        Value::Bool(_) => "Boolean",
        Value::Object(_) => "Object",
        Value::Null => "null",
    }
}

/// Jackson's `asText` of an array element.
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Object(_) | Value::Array(_) => String::new(),
        other => other.to_string(),
    }
}

/// The claims of an unsecured JWS (`OAuthBearerUnsecuredJws`'s structural checks).
fn parse_jws(jws: &str) -> Result<serde_json::Map<String, Value>, String> {
    if jws.contains("..") {
        return Err("Malformed compact serialization contains '..'".into());
    }
    let mut parts: Vec<&str> = jws.split('.').collect();
    // Java's split drops trailing empty strings; a trailing '.' adds one back.
    while parts.last() == Some(&"") {
        parts.pop();
    }
    if jws.ends_with('.') {
        parts.push("");
    }
    if parts.len() != 3 {
        return Err(
            "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values"
                .into(),
        );
    }
    let header = json_object(parts[0])?;
    let claims = json_object(parts[1])?;
    match header.get("alg") {
        None | Some(Value::Null) => return Err("JWS header must have an Algorithm value".into()),
        Some(Value::String(a)) if a == "none" => {}
        Some(_) => return Err("Unsecured JWS must have 'none' for an algorithm".into()),
    }
    if !parts[2].is_empty() {
        return Err("Unsecured JWS must not contain a digital signature".into());
    }
    Ok(claims)
}

fn json_object(part: &str) -> Result<serde_json::Map<String, Value>, String> {
    let bytes = JWS_BASE64
        .decode(part)
        .map_err(|_| "malformed Base64 URL encoded value".to_string())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(serde_json::Map::new()),
        Err(_) => Err("malformed JSON".into()),
    }
}

/// The token and authorization id of a client first message (`OAuthBearerClientInitialResponse`).
fn parse_initial_response(msg: &[u8]) -> Result<(String, String), String> {
    let bad = || "Invalid OAUTHBEARER client first message".to_string();
    let s = std::str::from_utf8(msg).map_err(|_| bad())?;
    let rest = s.strip_prefix("n,").ok_or_else(bad)?;
    let (gs2, rest) = rest.split_once(',').ok_or_else(bad)?;
    let authzid = match gs2 {
        "" => String::new(),
        a => {
            let name = a.strip_prefix("a=").ok_or_else(bad)?;
            if name.is_empty() || !name.bytes().all(|b| (0x01..=0x7f).contains(&b)) {
                return Err(bad());
            }
            name.to_string()
        }
    };
    // \x01 (key=value\x01)* \x01
    let body = rest
        .strip_prefix('\u{1}')
        .and_then(|r| r.strip_suffix('\u{1}'))
        .ok_or_else(bad)?;
    let mut auth = None;
    if !body.is_empty() {
        let pairs = body.strip_suffix('\u{1}').ok_or_else(bad)?;
        for kv in pairs.split('\u{1}') {
            let (k, v) = kv.split_once('=').ok_or_else(bad)?;
            let key_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic());
            let value_ok = !v.is_empty()
                && v.bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b));
            if !key_ok || !value_ok {
                return Err(bad());
            }
            if k == "auth" {
                auth = Some(v);
            }
        }
    }
    let auth = auth.ok_or_else(|| {
        "Invalid OAUTHBEARER client first message: 'auth' not specified".to_string()
    })?;
    let (scheme, token) = auth
        .split_once(' ')
        .map(|(s, t)| (s, t.trim_start_matches(' ')))
        .filter(|(s, t)| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && valid_token(t)
        })
        .ok_or_else(|| {
            "Invalid OAUTHBEARER client first message: invalid 'auth' format".to_string()
        })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "Invalid scheme in OAUTHBEARER client first message: {scheme}"
        ));
    }
    Ok((token.to_string(), authzid))
}

/// `[-_~+/.a-zA-Z0-9]+` followed by any number of `=`.
fn valid_token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_~+/.".contains(&b))
}

/// How one exchange step ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this challenge (Kafka's JSON error) and wait for the client's `\x01`.
    Challenge(Vec<u8>),
    /// Authenticated as `User:<name>`, the session ending at the token's expiry (ms).
    Done { user: String, expiry_ms: i64 },
}

/// Why an exchange failed: `Client` messages reach the client verbatim (Kafka's
/// `SaslAuthenticationException`), `Generic` ones are logged and the client gets the
/// generic "invalid credentials" message.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    Client(String),
    Generic(String),
}

/// Per-connection OAUTHBEARER state.
#[derive(Debug, Default)]
pub struct OAuthBearerServer {
    /// The JSON error sent as a challenge, awaiting the client's `\x01`.
    error: Option<String>,
}

impl OAuthBearerServer {
    pub fn evaluate(
        &mut self,
        validator: &UnsecuredValidator,
        msg: &[u8],
        now_ms: i64,
    ) -> Result<Outcome, Failure> {
        if msg == [1u8] {
            if let Some(e) = self.error.take() {
                return Err(Failure::Client(e));
            }
        }
        self.error = None;
        let (token, authzid) = parse_initial_response(msg).map_err(Failure::Generic)?;
        match validator.validate(&token, now_ms) {
            Err((json, why)) => {
                tracing::debug!(reason = %why, "OAUTHBEARER token refused");
                self.error = Some(json.clone());
                Ok(Outcome::Challenge(json.into_bytes()))
            }
            Ok((user, expiry_ms)) => {
                if !authzid.is_empty() && authzid != user {
                    return Err(Failure::Client(format!(
                        "Authentication failed: Client requested an authorization id ({authzid}) \
                         that is different from the token's principal name ({user})"
                    )));
                }
                Ok(Outcome::Done { user, expiry_ms })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(s)
    }

    fn jws(claims: &str) -> String {
        format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims))
    }

    fn first(token: &str) -> Vec<u8> {
        format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn valid_token_authenticates_until_exp() {
        let v = UnsecuredValidator::default();
        let mut s = OAuthBearerServer::default();
        let t = jws(r#"{"sub":"alice","iat":1699999990,"exp":1700000100.5}"#);
        assert_eq!(
            s.evaluate(&v, &first(&t), NOW),
            Ok(Outcome::Done {
                user: "alice".into(),
                expiry_ms: 1_700_000_100_500
            })
        );
        // With extensions and a matching authzid.
        let msg = format!("n,a=alice,\u{1}auth=Bearer {t}\u{1}ext=v 1\u{1}\u{1}");
        assert!(matches!(
            s.evaluate(&v, msg.as_bytes(), NOW),
            Ok(Outcome::Done { .. })
        ));
        let msg = format!("n,a=bob,\u{1}auth=Bearer {t}\u{1}\u{1}");
        assert!(matches!(
            s.evaluate(&v, msg.as_bytes(), NOW),
            Err(Failure::Client(m)) if m.contains("(bob)")
        ));
    }

    #[test]
    fn refused_token_gets_json_challenge_then_fails() {
        let v = UnsecuredValidator::default();
        for claims in [
            r#"{"sub":"alice","exp":1600000000}"#,
            r#"{"sub":"alice"}"#,
            r#"{"exp":1800000000}"#,
            r#"{"sub":" ","exp":1800000000}"#,
            r#"{"sub":"a","exp":1800000000,"iat":1800000000}"#,
            r#"{"sub":"a","exp":"1800000000"}"#,
        ] {
            let mut s = OAuthBearerServer::default();
            let json = br#"{"status":"invalid_token"}"#.to_vec();
            assert_eq!(
                s.evaluate(&v, &first(&jws(claims)), NOW),
                Ok(Outcome::Challenge(json)),
                "{claims}"
            );
            assert_eq!(
                s.evaluate(&v, &[1], NOW),
                Err(Failure::Client(r#"{"status":"invalid_token"}"#.into()))
            );
        }
        // Signed or malformed tokens.
        let mut s = OAuthBearerServer::default();
        let signed = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"none"}"#),
            b64(r#"{"sub":"a","exp":1800000000}"#)
        );
        let hs = format!(
            "{}.{}.",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"sub":"a","exp":1800000000}"#)
        );
        for t in [signed.as_str(), hs.as_str(), "abc", "a..b"] {
            assert!(matches!(
                s.evaluate(&v, &first(t), NOW),
                Ok(Outcome::Challenge(_)) | Err(Failure::Generic(_))
            ));
        }
        // A lone \x01 without an earlier error is not a valid first message.
        let mut s = OAuthBearerServer::default();
        assert!(matches!(
            s.evaluate(&v, &[1], NOW),
            Err(Failure::Generic(_))
        ));
        assert!(matches!(
            s.evaluate(&v, b"n,,\x01user=x\x01\x01", NOW),
            Err(Failure::Generic(m)) if m.contains("'auth' not specified")
        ));
    }

    #[test]
    fn options_scope_and_skew() {
        let opts = BTreeMap::from([
            (
                "unsecuredValidatorPrincipalClaimName".to_string(),
                "who".to_string(),
            ),
            (
                "unsecuredValidatorScopeClaimName".to_string(),
                "scp".to_string(),
            ),
            (
                "unsecuredValidatorRequiredScope".to_string(),
                "read  write".to_string(),
            ),
            (
                "unsecuredValidatorAllowableClockSkewMs".to_string(),
                "60000".to_string(),
            ),
        ]);
        let v = UnsecuredValidator::from_options(&opts).unwrap();
        let mut s = OAuthBearerServer::default();
        let ok = jws(r#"{"who":"carol","exp":1699999990,"scp":["read","write","x"]}"#);
        assert!(matches!(
            s.evaluate(&v, &first(&ok), NOW),
            Ok(Outcome::Done { user, .. }) if user == "carol"
        ));
        let short = jws(r#"{"who":"carol","exp":1800000000,"scp":"read"}"#);
        assert_eq!(
            s.evaluate(&v, &first(&short), NOW),
            Ok(Outcome::Challenge(
                br#"{"status":"insufficient_scope", "scope":"write"}"#.to_vec()
            ))
        );
        let bad = BTreeMap::from([(
            "unsecuredValidatorAllowableClockSkewMs".to_string(),
            "-1".to_string(),
        )]);
        assert!(UnsecuredValidator::from_options(&bad).is_err());
    }
}
