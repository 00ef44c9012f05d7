//! Dynamic broker configs (Kafka's `DynamicBrokerConfig` in ZooKeeper mode).
//!
//! `/config/brokers/<default>` (cluster-wide) and `/config/brokers/<id>` (this broker) are
//! read at start-up and again on each `/config/changes` notification for `brokers/...`.
//! Each update builds a new validated [`BrokerConfig`] (`server.properties` with the two
//! layers on top, see `samsa_common::config::dynamic`) and publishes it in an [`ArcSwap`]:
//! the request path reads [`DynamicBrokerConfig::current`] without a lock. The parts Kafka
//! reconfigures live are then told: log defaults for topics without overrides (retention,
//! segment size, cleanup policy, `message.max.bytes`, ...), the controller's
//! `unclean.leader.election.enable`, the connection limits. Thread counts (`num.*.threads`,
//! `background.threads`, `log.cleaner.threads`) are accepted and validated as Kafka does
//! (between half and double the current value) but Samsa's tokio runtime and cleaner do not
//! resize.
//!
//! Password-typed values are stored encoded with `password.encoder.secret`
//! ([`PasswordEncoder`]). Keys that may not be applied (read-only, invalid, undecodable)
//! are logged and dropped and the rest applied, as Kafka does; a znode that is not JSON
//! is logged and skipped (the layer stays as it was; empty at start-up).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use samsa_common::config::{dynamic, BrokerConfig};
use samsa_common::security::password_encoder::PasswordEncoder;
use samsa_common::zk::session::ZkSession;
use samsa_common::zk::znodes::config_type;
use tracing::{error, info, warn};

use crate::broker::BrokerContext;
use crate::log::LogConfig;
use crate::quota::connections::{ConnectionLimits, ConnectionQuotas};

/// Thread-count keys Kafka lets change by at most a factor of two at a time.
const THREAD_KEYS: [&str; 5] = [
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "num.network.threads",
];

/// The live broker config and what is needed to change it.
pub struct DynamicBrokerConfig {
    current: ArcSwap<BrokerConfig>,
    /// Serialises updates (the change listener and start-up); never taken by requests.
    update: Mutex<()>,
    /// Each topic's overrides as last read, so new broker defaults can be re-applied.
    topic_overrides: Mutex<HashMap<String, HashMap<String, String>>>,
    encoder: Option<PasswordEncoder>,
    old_encoder: Option<PasswordEncoder>,
    /// The acceptors' connection quotas, once the server runs.
    pub connection_quotas: OnceLock<Arc<ConnectionQuotas>>,
    /// The controller's broker-default unclean election flag.
    pub unclean_flag: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for DynamicBrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynamicBrokerConfig")
    }
}

fn encoder(
    cfg: &BrokerConfig,
    secret: Option<&samsa_common::config::Secret>,
) -> Option<PasswordEncoder> {
    let secret = secret?;
    match PasswordEncoder::new(
        &secret.0,
        cfg.password_encoder_keyfactory_algorithm.as_deref(),
        &cfg.password_encoder_cipher_algorithm,
        u32::try_from(cfg.password_encoder_key_length).unwrap_or(128),
        u32::try_from(cfg.password_encoder_iterations).unwrap_or(4096),
    ) {
        Ok(e) => Some(e),
        Err(e) => {
            error!(error = %e, "password encoder unusable; dynamic password configs disabled");
            None
        }
    }
}

/// The ZooKeeper entity name of a layer.
fn entity(broker_id: i32, per_broker: bool) -> String {
    if per_broker {
        broker_id.to_string()
    } else {
        config_type::DEFAULT_ENTITY.to_string()
    }
}

impl DynamicBrokerConfig {
    pub fn new(config: Arc<BrokerConfig>) -> Self {
        let unclean = config.unclean_leader_election_enable;
        Self {
            encoder: encoder(&config, config.password_encoder_secret.as_ref()),
            old_encoder: encoder(&config, config.password_encoder_old_secret.as_ref()),
            current: ArcSwap::new(config),
            update: Mutex::new(()),
            topic_overrides: Mutex::new(HashMap::new()),
            connection_quotas: OnceLock::new(),
            unclean_flag: Arc::new(std::sync::atomic::AtomicBool::new(unclean)),
        }
    }

    /// The effective config now (static + dynamic layers). Lock-free.
    pub fn current(&self) -> Arc<BrokerConfig> {
        self.current.load_full()
    }

    /// Kafka's `toPersistentProps`: password values encoded for ZooKeeper.
    pub fn to_persistent(
        &self,
        props: &BTreeMap<String, String>,
        per_broker: bool,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut out = props.clone();
        for (k, v) in props {
            if dynamic::is_password(k) {
                if !per_broker {
                    return Err("Password config can be defined only at broker level".into());
                }
                let enc = self
                    .encoder
                    .as_ref()
                    .ok_or("Password encoder secret not configured")?;
                out.insert(k.clone(), enc.encode(v).map_err(|e| e.to_string())?);
            }
        }
        Ok(out)
    }

    /// Kafka's `fromPersistentProps`: drops what may not be applied (logged) and decodes
    /// passwords (an undecodable one is logged and dropped).
    pub fn from_persistent(
        &self,
        stored: &BTreeMap<String, String>,
        per_broker: bool,
    ) -> BTreeMap<String, String> {
        let (mut props, dropped) = dynamic::sanitize_layer(stored, per_broker);
        let level = if per_broker {
            "broker"
        } else {
            "default cluster"
        };
        if !dropped.invalid.is_empty() {
            error!(keys = ?dropped.invalid, "Dynamic {level} config contains invalid values; these configs will be ignored");
        }
        if !dropped.read_only.is_empty() {
            error!(keys = ?dropped.read_only, "Non-dynamic configs configured in ZooKeeper will be ignored");
        }
        if !dropped.unprefixed_security.is_empty() {
            error!(keys = ?dropped.unprefixed_security, "Security configs can be dynamically updated only using listener prefix, base configs will be ignored");
        }
        if !dropped.per_broker_at_default.is_empty() {
            error!(keys = ?dropped.per_broker_at_default, "Per-broker configs defined at default cluster level will be ignored");
        }
        let passwords: Vec<String> = props
            .keys()
            .filter(|k| dynamic::is_password(k))
            .cloned()
            .collect();
        for k in passwords {
            let decoded = match (&self.encoder, props.get(&k)) {
                (Some(enc), Some(v)) => enc.decode(v).map_err(|e| e.to_string()),
                _ => Err("Password encoder secret not configured".to_string()),
            };
            match decoded {
                Ok(v) => {
                    props.insert(k, v);
                }
                Err(e) => {
                    error!(key = %k, error = %e, "Dynamic password config could not be decoded, ignoring");
                    props.remove(&k);
                }
            }
        }
        props
    }

    /// Kafka's `DynamicBrokerConfig.validate`: the change `props` (a layer's complete new
    /// content) is allowed at this level and the resulting config is valid. The error text
    /// is Kafka's.
    pub fn validate(
        &self,
        props: &BTreeMap<String, String>,
        per_broker: bool,
    ) -> Result<(), String> {
        dynamic::validate(props, per_broker)?;
        let cur = self.current();
        let new = if per_broker {
            cur.with_dynamic(&cur.dynamic_default, props)
        } else {
            cur.with_dynamic(props, &cur.dynamic_broker)
        }
        .map_err(|e| e.to_string())?;
        validate_thread_counts(&cur, &new)
            .map_err(|_| "Invalid dynamic configuration".to_string())?;
        Ok(())
    }

    /// Start-up (Kafka's `initialize`): reads both layers and returns the effective config,
    /// re-encoding stored passwords from `password.encoder.old.secret` when one is set.
    pub async fn load(
        &self,
        zk: &ZkSession,
        broker_id: i32,
    ) -> samsa_common::error::Result<Arc<BrokerConfig>> {
        let default = self
            .read_layer(zk, broker_id, false)
            .await?
            .unwrap_or_default();
        let broker = self
            .read_layer(zk, broker_id, true)
            .await?
            .unwrap_or_default();
        let _g = self.update.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.current();
        match cur.with_dynamic(&default, &broker) {
            Ok(c) => self.current.store(Arc::new(c)),
            Err(e) => {
                error!(error = %e, "dynamic broker configs could not be applied; using server.properties")
            }
        }
        let c = self.current();
        self.unclean_flag
            .store(c.unclean_leader_election_enable, Ordering::Relaxed);
        Ok(c)
    }

    async fn read_layer(
        &self,
        zk: &ZkSession,
        broker_id: i32,
        per_broker: bool,
    ) -> samsa_common::error::Result<Option<BTreeMap<String, String>>> {
        let name = entity(broker_id, per_broker);
        let stored = match zk.get_entity_config(config_type::BROKER, &name).await {
            Ok(s) => s,
            Err(e @ samsa_common::error::Error::InvalidZnode { .. }) => {
                error!(entity = %name, error = %e, "skipping unreadable broker config znode");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let stored = if per_broker {
            self.maybe_reencode(zk, broker_id, stored).await
        } else {
            stored
        };
        Ok(Some(self.from_persistent(&stored, per_broker)))
    }

    /// Kafka's `maybeReEncodePasswords`: values the old secret decodes are re-encoded with
    /// the current one and written back.
    async fn maybe_reencode(
        &self,
        zk: &ZkSession,
        broker_id: i32,
        stored: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let (Some(old), Some(new)) = (&self.old_encoder, &self.encoder) else {
            return stored;
        };
        if !stored.keys().any(|k| dynamic::is_password(k)) {
            return stored;
        }
        let mut out = stored.clone();
        for (k, v) in &stored {
            if dynamic::is_password(k) {
                if let Ok(plain) = old.decode(v) {
                    if let Ok(enc) = new.encode(&plain) {
                        out.insert(k.clone(), enc);
                    }
                }
            }
        }
        if let Err(e) = samsa_common::zk::admin::change_entity_config(
            zk,
            config_type::BROKER,
            &broker_id.to_string(),
            &out,
        )
        .await
        {
            warn!(error = %e, "could not write re-encoded broker passwords");
        }
        out
    }

    /// A `/config/changes` notification for `brokers/<name>`: re-read that layer and apply.
    pub async fn layer_changed(
        &self,
        ctx: &BrokerContext,
        zk: &ZkSession,
        name: &str,
    ) -> samsa_common::error::Result<()> {
        let per_broker = if name == config_type::DEFAULT_ENTITY {
            false
        } else if name.parse::<i32>().ok() == Some(ctx.broker_id) {
            true
        } else {
            return Ok(());
        };
        // An unreadable znode keeps the layer as it was.
        let Some(layer) = self.read_layer(zk, ctx.broker_id, per_broker).await? else {
            return Ok(());
        };
        info!(entity = name, keys = ?layer.keys().collect::<Vec<_>>(), "processing broker config change");
        let old;
        let new;
        {
            let _g = self.update.lock().unwrap_or_else(|p| p.into_inner());
            old = self.current();
            let built = if per_broker {
                old.with_dynamic(&old.dynamic_default, &layer)
            } else {
                old.with_dynamic(&layer, &old.dynamic_broker)
            };
            new = match built {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    error!(entity = name, error = %e, "dynamic broker config could not be applied");
                    return Ok(());
                }
            };
            self.current.store(new.clone());
        }
        self.reconfigure(ctx, &old, &new);
        Ok(())
    }

    /// Tell the live parts about a new config (Kafka's `BrokerReconfigurable`s).
    fn reconfigure(&self, ctx: &BrokerContext, old: &BrokerConfig, new: &BrokerConfig) {
        if old.topic_defaults() != new.topic_defaults() {
            self.reconfigure_logs(ctx, new);
        }
        self.unclean_flag
            .store(new.unclean_leader_election_enable, Ordering::Relaxed);
        if new.unclean_leader_election_enable && !old.unclean_leader_election_enable {
            if let Some(c) = ctx.controller.get() {
                c.topic_config_changed();
            }
        }
        if let Some(q) = self.connection_quotas.get() {
            let a = ConnectionLimits::from_config(old);
            let b = ConnectionLimits {
                ip_rates: a.ip_rates.clone(),
                ..ConnectionLimits::from_config(new)
            };
            if a != b {
                info!("reconfiguring connection limits");
                q.reconfigure(b);
            }
        }
    }

    fn reconfigure_logs(&self, ctx: &BrokerContext, new: &BrokerConfig) {
        let Some(lm) = ctx.log_manager() else {
            return;
        };
        let defaults = new.topic_defaults();
        let overrides = self
            .topic_overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match LogConfig::from_props(&defaults) {
            Ok(d) => lm.set_default_config(d),
            Err(e) => {
                warn!(error = %e, "new broker log defaults rejected by the log layer");
                return;
            }
        }
        let mut topics: Vec<String> = lm
            .all_logs()
            .iter()
            .map(|l| l.topic_partition().topic.clone())
            .collect();
        topics.sort_unstable();
        topics.dedup();
        let none = HashMap::new();
        for t in topics {
            let o = overrides.get(&t).unwrap_or(&none);
            match LogConfig::with_overrides(&defaults, o) {
                Ok(cfg) => lm.update_config(&t, cfg),
                Err(e) => warn!(topic = %t, error = %e, "keeping old log config"),
            }
        }
        info!("applied new broker log defaults");
    }

    /// Remembers a topic's overrides for later broker default changes.
    pub fn remember_overrides(&self, topic: &str, overrides: HashMap<String, String>) {
        self.topic_overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_string(), overrides);
    }

    /// Remembers a topic's overrides (for later broker default changes) and returns the
    /// topic's effective log config on the current defaults.
    pub fn topic_log_config(
        &self,
        topic: &str,
        overrides: HashMap<String, String>,
    ) -> crate::error::Result<LogConfig> {
        let cfg = LogConfig::with_overrides(&self.current().topic_defaults(), &overrides);
        self.topic_overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_string(), overrides);
        cfg
    }
}

/// Kafka's `DynamicThreadPool.validateReconfiguration` (and the cleaner's thread check).
fn validate_thread_counts(cur: &BrokerConfig, new: &BrokerConfig) -> Result<(), String> {
    let keys = THREAD_KEYS
        .iter()
        .chain(std::iter::once(&"log.cleaner.threads"));
    for k in keys {
        let (Some(old), Some(next)) = (
            cur.get(k).and_then(|v| v.trim().parse::<i64>().ok()),
            new.get(k).and_then(|v| v.trim().parse::<i64>().ok()),
        ) else {
            continue;
        };
        if old == next {
            continue;
        }
        let msg = format!("Dynamic thread count update validation failed for {k}={next}");
        let min = if *k == "log.cleaner.threads" { 0 } else { 1 };
        if next < min {
            return Err(format!("{msg}, value should be at least {min}"));
        }
        if next < old / 2 {
            return Err(format!(
                "{msg}, value should be at least half the current value {old}"
            ));
        }
        if next > old * 2 {
            return Err(format!(
                "{msg}, value should not be greater than double the current value {old}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(extra: &[(&str, &str)]) -> Arc<BrokerConfig> {
        let mut p = HashMap::from([("zookeeper.connect".to_string(), "z:1".to_string())]);
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        Arc::new(BrokerConfig::from_props(&p).unwrap())
    }

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validation_follows_kafka() {
        let d = DynamicBrokerConfig::new(cfg(&[]));
        assert!(d.validate(&m(&[("num.io.threads", "16")]), true).is_ok());
        assert_eq!(
            d.validate(&m(&[("num.io.threads", "17")]), true),
            Err("Invalid dynamic configuration".to_string())
        );
        // A value that breaks the whole config: the config's own message naming the key.
        let e = d
            .validate(&m(&[("log.cleaner.min.cleanable.ratio", "2")]), false)
            .unwrap_err();
        assert!(e.contains("log.cleaner.min.cleanable.ratio"), "{e}");
        assert!(d
            .validate(&m(&[("log.retention.ms", "1000")]), false)
            .is_ok());
    }

    #[test]
    fn passwords_need_a_secret_and_round_trip() {
        let key = "listener.name.external.ssl.key.password";
        let none = DynamicBrokerConfig::new(cfg(&[]));
        assert_eq!(
            none.to_persistent(&m(&[(key, "pw")]), true),
            Err("Password encoder secret not configured".to_string())
        );
        let d = DynamicBrokerConfig::new(cfg(&[("password.encoder.secret", "s")]));
        let stored = d
            .to_persistent(&m(&[(key, "pw"), ("a.b", "c")]), true)
            .unwrap();
        assert_ne!(stored[key], "pw");
        assert_eq!(stored["a.b"], "c");
        assert_eq!(
            d.from_persistent(&stored, true),
            m(&[(key, "pw"), ("a.b", "c")])
        );
        // Another secret cannot decode it: the key is dropped, the rest kept.
        let other = DynamicBrokerConfig::new(cfg(&[("password.encoder.secret", "t")]));
        assert_eq!(other.from_persistent(&stored, true), m(&[("a.b", "c")]));
    }
}
