//! SASL/PLAIN server (RFC 4616, Kafka's `PlainSaslServer`): one message
//! `[authzid] NUL authcid NUL passwd`, checked against the `user_<name>="<password>"`
//! options of the listener's `PlainLoginModule` JAAS entry.

use std::collections::HashMap;

/// Users and passwords from JAAS. Never printed.
#[derive(Clone, Default)]
pub struct PlainUsers(HashMap<String, String>);

impl std::fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlainUsers({} users)", self.0.len())
    }
}

impl PlainUsers {
    /// From a JAAS entry's options (`user_alice="pw"` → alice).
    pub fn from_options(options: &std::collections::BTreeMap<String, String>) -> Self {
        Self(
            options
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v.clone())))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Equality that does not stop at the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks one PLAIN message; `Ok(username)` or Kafka's failure message.
pub fn authenticate(users: &PlainUsers, token: &[u8]) -> Result<String, String> {
    let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
    if parts.len() != 3 {
        return Err(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        ));
    }
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .map_err(|_| "Invalid SASL/PLAIN response: not UTF-8".to_string())
    };
    let (authz, user, password) = (text(parts[0])?, text(parts[1])?, parts[2]);
    if user.is_empty() {
        return Err("Authentication failed: username not specified".into());
    }
    if password.is_empty() {
        return Err("Authentication failed: password not specified".into());
    }
    let ok = users
        .0
        .get(&user)
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), password));
    if !ok {
        return Err("Authentication failed: Invalid username or password".into());
    }
    if !authz.is_empty() && authz != user {
        return Err(
            "Authentication failed: Client requested an authorization id that is different from username"
                .into(),
        );
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_messages() {
        let users = PlainUsers::from_options(&std::collections::BTreeMap::from([
            ("user_alice".to_string(), "pw".to_string()),
            ("username".to_string(), "admin".to_string()),
        ]));
        assert_eq!(users.len(), 1);
        assert_eq!(authenticate(&users, b"\0alice\0pw").unwrap(), "alice");
        assert_eq!(authenticate(&users, b"alice\0alice\0pw").unwrap(), "alice");
        assert!(authenticate(&users, b"bob\0alice\0pw").is_err());
        assert_eq!(
            authenticate(&users, b"\0alice\0nope").unwrap_err(),
            "Authentication failed: Invalid username or password"
        );
        assert!(authenticate(&users, b"\0admin\0x").is_err());
        assert!(authenticate(&users, b"alice").is_err());
        assert!(authenticate(&users, b"\0\0pw").is_err());
        assert!(!format!("{users:?}").contains("pw"));
    }
}
