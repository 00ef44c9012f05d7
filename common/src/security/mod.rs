//! Security pieces shared by the broker (server side) and the small Kafka client
//! (inter-broker side): listener-scoped settings lookup, key and trust stores, JAAS
//! parsing, SCRAM primitives, and the client's TLS + SASL connect.

pub mod client;
pub mod jaas;
pub mod password_encoder;
pub mod scram;
pub mod stores;

use std::collections::BTreeMap;

/// Looks up `ssl.*` / `sasl.*` keys for one listener the way Kafka does: the
/// `listener.name.<listener lower case>.<key>` override first, then the plain key.
#[derive(Clone, Debug, Default)]
pub struct ListenerSettings {
    /// Lower-cased listener name (`None` = unprefixed keys only).
    listener: Option<String>,
    /// Every server.properties key (known and unknown).
    props: BTreeMap<String, String>,
}

impl ListenerSettings {
    pub fn new(listener: Option<&str>, props: BTreeMap<String, String>) -> Self {
        Self {
            listener: listener.map(|l| l.to_ascii_lowercase()),
            props,
        }
    }

    /// The listener prefix, e.g. `listener.name.sasl_ssl.`.
    pub fn prefix(&self) -> Option<String> {
        self.listener
            .as_ref()
            .map(|l| format!("listener.name.{l}."))
    }

    /// `(key as written, trimmed value)`, listener override first. Empty values count as
    /// unset, as Kafka's optional keys do.
    pub fn get(&self, key: &str) -> Option<(String, String)> {
        if let Some(p) = self.prefix() {
            let full = format!("{p}{key}");
            if let Some(v) = self.props.get(&full) {
                return Some((full, v.trim().to_string())).filter(|(_, v)| !v.is_empty());
            }
        }
        self.props
            .get(key)
            .map(|v| (key.to_string(), v.trim().to_string()))
            .filter(|(_, v)| !v.is_empty())
    }

    /// The value only.
    pub fn value(&self, key: &str) -> Option<String> {
        self.get(key).map(|(_, v)| v)
    }

    /// A comma-separated list value (`None` when unset).
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.value(key).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    /// Only the listener-prefixed key (no fallback), e.g. per-mechanism JAAS settings.
    pub fn prefixed_only(&self, key: &str) -> Option<(String, String)> {
        let full = format!("{}{key}", self.prefix()?);
        self.props.get(&full).map(|v| (full, v.trim().to_string()))
    }
}
