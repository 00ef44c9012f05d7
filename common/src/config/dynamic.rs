//! Kafka's rules for dynamic broker configs (`DynamicBrokerConfig`, `DynamicConfig.Broker`)
//! and the overlay of `/config/brokers/<default>` and `/config/brokers/<id>` on
//! `server.properties`.
//!
//! - A key is dynamic when Kafka lists it in `AllDynamicConfigs` (the `dynamic` flag of the
//!   table) or it is one of the dynamic-only quota keys ([`DYNAMIC_ONLY`]). Any other key
//!   Kafka defines is read-only ("Cannot update these configs dynamically"); keys Kafka does
//!   not define are custom configs and are accepted, as Kafka accepts them.
//! - Per-broker keys (listeners, SSL and SASL settings and their `listener.name.<l>.` forms)
//!   may not be set at the cluster default level.
//! - The keystore/truststore keys may only be set with a listener prefix.
//! - The effective config is `server.properties`, then the cluster default, then the
//!   per-broker layer; a layer's key removes its synonyms from the layers below (so a
//!   dynamic `log.retention.hours` beats a static `log.retention.ms`), as Kafka's
//!   `overrideProps` does.

use std::collections::{BTreeMap, HashMap};

use super::{broker_config_def, check_type, BrokerConfig, ConfigType};
use crate::error::Result;

/// Dynamic-only broker keys (Kafka's `QuotaConfigs.brokerQuotaConfigs`): not in
/// `server.properties`, bytes per second, default `Long.MAX_VALUE`.
pub const DYNAMIC_ONLY: [&str; 3] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
];

/// Kafka's `SslConfigs.RECONFIGURABLE_CONFIGS`: dynamic only with a listener prefix.
pub const LISTENER_ONLY_SECURITY: [&str; 10] = [
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.certificates",
];

/// Listener keys that are cluster-wide even with a listener prefix.
const CLUSTER_LEVEL_LISTENER: [&str; 3] = [
    "max.connections",
    "max.connection.creation.rate",
    "num.network.threads",
];

/// Password-typed dynamic keys (a name ending in one of these is encoded in ZooKeeper).
const PASSWORDS: [&str; 7] = [
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.certificates",
    "sasl.jaas.config",
];

/// `listener.name.<l>.<base>` → `<base>`.
pub fn listener_base(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("listener.name.")?;
    let (_, base) = rest.split_once('.')?;
    Some(base)
}

/// Kafka's `DynamicBrokerConfig.isPasswordConfig`.
pub fn is_password(name: &str) -> bool {
    PASSWORDS.iter().any(|p| name.ends_with(p))
}

/// In `AllDynamicConfigs` (or dynamic-only).
pub fn is_dynamic(name: &str) -> bool {
    DYNAMIC_ONLY.contains(&name) || broker_config_def(name).is_some_and(|d| d.dynamic)
}

/// Defined by Kafka but not dynamic (`DynamicConfig.Broker.nonDynamicProps`).
pub fn is_read_only(name: &str) -> bool {
    broker_config_def(name).is_some_and(|d| !d.dynamic)
}

/// Per-broker only (Kafka's `PerBrokerConfigs` and per-broker listener configs).
pub fn is_per_broker(name: &str) -> bool {
    if let Some(base) = listener_base(name) {
        return !CLUSTER_LEVEL_LISTENER.contains(&base);
    }
    is_dynamic(name)
        && (name.starts_with("ssl.")
            || name.starts_with("sasl.")
            || matches!(
                name,
                "listeners"
                    | "advertised.listeners"
                    | "listener.security.protocol.map"
                    | "principal.builder.class"
            ))
}

/// Kafka's `brokerConfigSynonyms` (without listener overrides): the names that set the
/// same value, highest precedence first.
pub fn synonyms(name: &str) -> Vec<&str> {
    match name {
        "log.roll.ms" | "log.roll.hours" => vec!["log.roll.ms", "log.roll.hours"],
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => {
            vec!["log.roll.jitter.ms", "log.roll.jitter.hours"]
        }
        "log.flush.interval.ms" => vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => vec![
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        other => vec![other],
    }
}

fn set_string(names: &[&str]) -> String {
    format!("Set({})", names.join(", "))
}

/// Kafka's `DynamicBrokerConfig.validateConfigs`: the error text for a change that may not
/// be made at this level, or a value of the wrong type. `Ok` says nothing about whether the
/// whole resulting config is valid (see [`BrokerConfig::with_dynamic`]).
pub fn validate(
    props: &BTreeMap<String, String>,
    per_broker: bool,
) -> std::result::Result<(), String> {
    let names = |f: &dyn Fn(&str) -> bool| -> Vec<&str> {
        props.keys().map(String::as_str).filter(|k| f(k)).collect()
    };
    let read_only = names(&is_read_only);
    if !read_only.is_empty() {
        return Err(format!(
            "Cannot update these configs dynamically: {}",
            set_string(&read_only)
        ));
    }
    let unprefixed = names(&|k| LISTENER_ONLY_SECURITY.contains(&k));
    if !unprefixed.is_empty() {
        return Err(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: {}",
            set_string(&unprefixed)
        ));
    }
    for (k, v) in props {
        let base = listener_base(k).unwrap_or(k);
        if DYNAMIC_ONLY.contains(&base) {
            check_type(base, v, ConfigType::Long).map_err(|e| e.to_string())?;
            if v.trim().parse::<i64>().is_ok_and(|n| n < 0) {
                return Err(format!(
                    "Invalid value {v} for configuration {base}: Value must be at least 0"
                ));
            }
        } else if let Some(d) = broker_config_def(base).filter(|d| d.dynamic) {
            check_type(base, v, d.ty).map_err(|e| e.to_string())?;
        }
    }
    if !per_broker {
        let per = names(&is_per_broker);
        if !per.is_empty() {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                set_string(&per)
            ));
        }
    }
    Ok(())
}

/// What reading a layer from ZooKeeper dropped (Kafka's `fromPersistentProps` logs these and
/// carries on).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub read_only: Vec<String>,
    pub unprefixed_security: Vec<String>,
    pub per_broker_at_default: Vec<String>,
    pub invalid: Vec<String>,
}

/// Kafka's `fromPersistentProps` minus password decoding: the keys of a stored layer that
/// may be applied; the rest are reported in [`Dropped`].
pub fn sanitize_layer(
    props: &BTreeMap<String, String>,
    per_broker: bool,
) -> (BTreeMap<String, String>, Dropped) {
    let mut out = BTreeMap::new();
    let mut dropped = Dropped::default();
    for (k, v) in props {
        let one = BTreeMap::from([(k.clone(), v.clone())]);
        if is_read_only(k) {
            dropped.read_only.push(k.clone());
        } else if LISTENER_ONLY_SECURITY.contains(&k.as_str()) {
            dropped.unprefixed_security.push(k.clone());
        } else if !per_broker && is_per_broker(k) {
            dropped.per_broker_at_default.push(k.clone());
        } else if validate(&one, true).is_err() {
            dropped.invalid.push(k.clone());
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    (out, dropped)
}

/// Kafka's `overrideProps`: `layer` on top of `props`, each key removing its synonyms.
fn override_props(props: &mut HashMap<String, String>, layer: &BTreeMap<String, String>) {
    for (k, v) in layer {
        for s in synonyms(k) {
            props.remove(s);
        }
        props.insert(k.clone(), v.clone());
    }
}

impl BrokerConfig {
    /// The config with `default_layer` (`/config/brokers/<default>`) and `broker_layer`
    /// (`/config/brokers/<id>`) over this config's `server.properties` values, validated as
    /// a whole like a new `KafkaConfig`. Layers hold decoded values.
    pub fn with_dynamic(
        &self,
        default_layer: &BTreeMap<String, String>,
        broker_layer: &BTreeMap<String, String>,
    ) -> Result<BrokerConfig> {
        let mut props: HashMap<String, String> = self
            .static_props
            .iter()
            .chain(self.static_unknown())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        override_props(&mut props, default_layer);
        override_props(&mut props, broker_layer);
        let mut cfg = BrokerConfig::from_props(&props)?;
        // `unknown` keeps the merged custom keys (e.g. `listener.name.<l>.max.connections`).
        cfg.static_props = self.static_props.clone();
        cfg.dynamic_default = default_layer.clone();
        cfg.dynamic_broker = broker_layer.clone();
        Ok(cfg)
    }

    /// Unknown keys that came from server.properties (not from a dynamic layer).
    fn static_unknown(&self) -> impl Iterator<Item = (&String, &String)> {
        self.unknown.iter().filter(|(k, _)| {
            !self.dynamic_default.contains_key(*k) && !self.dynamic_broker.contains_key(*k)
        })
    }

    /// Value of a dynamic-only key (`Long.MAX_VALUE` when unset or unreadable).
    pub fn dynamic_only_long(&self, key: &str) -> i64 {
        self.dynamic_broker
            .get(key)
            .or_else(|| self.dynamic_default.get(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_messages() {
        assert_eq!(
            validate(&m(&[("broker.id", "3")]), true).unwrap_err(),
            "Cannot update these configs dynamically: Set(broker.id)"
        );
        assert_eq!(
            validate(&m(&[("log.retention.ms", "abc")]), true).unwrap_err(),
            "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            validate(&m(&[("ssl.keystore.password", "x")]), true).unwrap_err(),
            "These security configs can be dynamically updated only per-listener using the listener prefix: Set(ssl.keystore.password)"
        );
        assert_eq!(
            validate(&m(&[("listener.name.external.ssl.keystore.password", "x")]), false)
                .unwrap_err(),
            "Cannot update these configs at default cluster level, broker id must be specified: Set(listener.name.external.ssl.keystore.password)"
        );
        assert!(validate(
            &m(&[("listener.name.external.max.connections", "5")]),
            false
        )
        .is_ok());
        assert!(validate(
            &m(&[("my.custom.key", "x"), ("log.retention.ms", "5")]),
            false
        )
        .is_ok());
        assert!(validate(&m(&[("leader.replication.throttled.rate", "-1")]), false).is_err());
        assert!(is_password("listener.name.internal.ssl.key.password"));
        assert!(!is_password("log.retention.ms"));
    }

    #[test]
    fn layers_and_synonyms() {
        let base = BrokerConfig::from_props(&HashMap::from([
            ("zookeeper.connect".to_string(), "zk:2181".to_string()),
            ("log.retention.ms".to_string(), "1000".to_string()),
            ("message.max.bytes".to_string(), "5000".to_string()),
        ]))
        .unwrap();
        let d = m(&[("log.retention.hours", "2"), ("message.max.bytes", "6000")]);
        let b = m(&[("message.max.bytes", "7000")]);
        let c = base.with_dynamic(&d, &b).unwrap();
        assert_eq!(c.log_retention_ms, 7_200_000);
        assert_eq!(c.message_max_bytes, 7000);
        assert_eq!(c.static_props.get("log.retention.ms").unwrap(), "1000");
        let back = c.with_dynamic(&BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!(back.log_retention_ms, 1000);
        assert_eq!(back.message_max_bytes, 5000);
        // A value that breaks the whole config (Kafka's new KafkaConfig) is refused.
        assert!(base
            .with_dynamic(
                &BTreeMap::new(),
                &m(&[("log.cleaner.min.cleanable.ratio", "2")])
            )
            .is_err());
    }

    #[test]
    fn stored_layers_drop_what_kafka_drops() {
        let (ok, dropped) = sanitize_layer(
            &m(&[
                ("broker.id", "4"),
                ("log.retention.ms", "x"),
                ("listeners", "PLAINTEXT://:1"),
                ("message.max.bytes", "100"),
            ]),
            false,
        );
        assert_eq!(ok, m(&[("message.max.bytes", "100")]));
        assert_eq!(dropped.read_only, vec!["broker.id"]);
        assert_eq!(dropped.invalid, vec!["log.retention.ms"]);
        assert_eq!(dropped.per_broker_at_default, vec!["listeners"]);
    }
}
