//! Client quotas as Kafka's `ClientQuotaManager` (default quota callback) applies them.
//!
//! Quotas are configured per entity (see `samsa_common::zk::znodes::quota_config`): a
//! user, a client id, a user + client id, and the `<default>` of each level. For a request
//! from (user, client id) Kafka first picks the *metric tags* — which (user, client) pair
//! the client's usage is counted under, so all clients of a user with a user quota share one
//! rate — and then the quota for those tags, in this order of precedence:
//!
//! 1. `/config/users/<user>/clients/<client-id>`
//! 2. `/config/users/<user>/clients/<default>`
//! 3. `/config/users/<user>`
//! 4. `/config/users/<default>/clients/<client-id>`
//! 5. `/config/users/<default>/clients/<default>`
//! 6. `/config/users/<default>`
//! 7. `/config/clients/<client-id>`
//! 8. `/config/clients/<default>`
//!
//! Each (tags) pair has a windowed [`Rate`]; recording a request's bytes and then finding
//! the rate above the quota yields a throttle time `(rate - quota) / quota * window`
//! (Kafka does not cap byte-rate throttle times). The connection then answers at once with
//! that `throttle_time_ms` and stops reading for that long (KIP-219).
//!
//! Cost: until the first quota is configured (Kafka's `quotaTypesEnabled == NoQuotas`)
//! recording is one relaxed atomic load. After that it is one short mutex section (a map
//! lookup and a few float operations), never held across I/O. Sensors idle for an hour
//! are dropped, as Kafka expires them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, RwLock};

use samsa_common::zk::znodes::{config_type::DEFAULT_ENTITY, quota_config};
use tracing::{info, warn};

use super::rate::{Rate, WindowConfig};

/// Sensors with no activity for this long are dropped (Kafka's
/// `InactiveSensorExpirationTimeSeconds`).
const SENSOR_EXPIRATION_MS: u64 = 3_600_000;
/// How often the sensor map is swept for expired sensors.
const PURGE_INTERVAL_MS: u64 = 60_000;

/// One level of a quota entity: a named user or client id, or `<default>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityName {
    Default,
    /// The real (desanitized) name.
    Named(String),
}

impl EntityName {
    /// From a sanitized znode name (`<default>` is the default entity).
    pub fn from_sanitized(s: &str) -> Option<Self> {
        if s == DEFAULT_ENTITY {
            Some(Self::Default)
        } else {
            samsa_common::zk::znodes::desanitize_entity_name(s).map(Self::Named)
        }
    }

    fn named(s: &str) -> Self {
        Self::Named(s.to_string())
    }
}

/// A quota entity: `user` and/or `client`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client: Option<EntityName>,
}

impl QuotaEntity {
    pub fn new(user: Option<EntityName>, client: Option<EntityName>) -> Self {
        Self { user, client }
    }

    /// From a change notification's entity path (`users/a/clients/c`, `clients/c`, ...).
    pub fn from_entity_path(path: &str) -> Option<Self> {
        let (u, c) = quota_config::parse_entity_path(path)?;
        let user = match u {
            Some(u) => Some(EntityName::from_sanitized(u)?),
            None => None,
        };
        let client = match c {
            Some(c) => Some(EntityName::from_sanitized(c)?),
            None => None,
        };
        Some(Self { user, client })
    }
}

/// Kafka's `QuotaTypes` bits: which levels have ever had a quota.
const CLIENT_ID_ENABLED: u8 = 1;
const USER_ENABLED: u8 = 2;
const USER_CLIENT_ID_ENABLED: u8 = 4;

/// The configured quotas of one type (e.g. `producer_byte_rate`) for every entity.
#[derive(Debug, Default)]
struct Overrides {
    quotas: HashMap<QuotaEntity, f64>,
}

impl Overrides {
    fn has(&self, user: Option<EntityName>, client: Option<EntityName>) -> bool {
        self.quotas.contains_key(&QuotaEntity { user, client })
    }

    fn get(&self, user: Option<EntityName>, client: Option<EntityName>) -> Option<f64> {
        self.quotas.get(&QuotaEntity { user, client }).copied()
    }

    /// Kafka's `quotaMetricTags`: the (user, client id) the usage is counted under; empty
    /// strings stand for "any".
    fn metric_tags(&self, types: u8, user: &str, client: &str) -> (String, String) {
        let (u, c) = (user.to_string(), client.to_string());
        match types {
            0 | CLIENT_ID_ENABLED => return (String::new(), c),
            USER_ENABLED => return (u, String::new()),
            USER_CLIENT_ID_ENABLED => return (u, c),
            _ => {}
        }
        let un = || Some(EntityName::named(user));
        let cn = || Some(EntityName::named(client));
        let dflt = || Some(EntityName::Default);
        if self.has(un(), cn()) || self.has(un(), dflt()) {
            (u, c)
        } else if self.has(un(), None) {
            (u, String::new())
        } else if self.has(dflt(), cn()) || self.has(dflt(), dflt()) {
            (u, c)
        } else if self.has(dflt(), None) {
            (u, String::new())
        } else {
            (String::new(), c)
        }
    }

    /// Kafka's `quotaLimit` for metric tags.
    fn limit(&self, user: &str, client: &str) -> Option<f64> {
        let un = || Some(EntityName::named(user));
        let cn = || Some(EntityName::named(client));
        let dflt = || Some(EntityName::Default);
        if !user.is_empty() && !client.is_empty() {
            self.get(un(), cn())
                .or_else(|| self.get(un(), dflt()))
                .or_else(|| self.get(dflt(), cn()))
                .or_else(|| self.get(dflt(), dflt()))
        } else if !user.is_empty() {
            self.get(un(), None).or_else(|| self.get(dflt(), None))
        } else if !client.is_empty() {
            self.get(None, cn()).or_else(|| self.get(None, dflt()))
        } else {
            None
        }
    }
}

#[derive(Debug)]
struct Sensor {
    rate: Rate,
    last_record_ms: u64,
}

#[derive(Debug, Default)]
struct Sensors {
    map: HashMap<(String, String), Sensor>,
    last_purge_ms: u64,
}

/// The quota of one type for every client, and the rates they are measured with.
#[derive(Debug)]
pub struct ClientQuotaManager {
    /// `producer_byte_rate`, `consumer_byte_rate`, ...
    key: &'static str,
    window: WindowConfig,
    /// Any quota ever configured (Kafka never turns quota accounting off again).
    enabled: AtomicBool,
    types: AtomicU8,
    overrides: RwLock<Overrides>,
    sensors: Mutex<Sensors>,
}

impl ClientQuotaManager {
    pub fn new(key: &'static str, window: WindowConfig) -> Self {
        Self {
            key,
            window,
            enabled: AtomicBool::new(false),
            types: AtomicU8::new(0),
            overrides: RwLock::new(Overrides::default()),
            sensors: Mutex::new(Sensors::default()),
        }
    }

    /// True once any quota of this type has been configured.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Sets (`Some`) or removes (`None`) the quota of `entity`.
    pub fn update(&self, entity: &QuotaEntity, quota: Option<f64>) {
        let bit = match (&entity.user, &entity.client) {
            (Some(_), Some(_)) => USER_CLIENT_ID_ENABLED,
            (Some(_), None) => USER_ENABLED,
            (None, Some(_)) => CLIENT_ID_ENABLED,
            (None, None) => return,
        };
        let Ok(mut o) = self.overrides.write() else {
            return;
        };
        self.types.fetch_or(bit, Ordering::Relaxed);
        match quota {
            Some(q) => {
                info!(
                    quota = self.key,
                    ?entity,
                    value = q,
                    "changing client quota"
                );
                o.quotas.insert(entity.clone(), q);
            }
            None => {
                if o.quotas.remove(entity).is_some() {
                    info!(quota = self.key, ?entity, "removing client quota");
                }
            }
        }
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// The quota that applies to (user, client id), if any.
    pub fn quota_for(&self, user: &str, client: &str) -> Option<f64> {
        let o = self.overrides.read().ok()?;
        let (u, c) = o.metric_tags(self.types.load(Ordering::Relaxed), user, client);
        o.limit(&u, &c)
    }

    /// The metric tags (user, client id) usage of (user, client id) is counted under, and
    /// their quota, if one applies.
    pub fn tags_and_limit(&self, user: &str, client: &str) -> Option<((String, String), f64)> {
        let o = self.overrides.read().ok()?;
        let tags = o.metric_tags(self.types.load(Ordering::Relaxed), user, client);
        let limit = o.limit(&tags.0, &tags.1)?;
        Some((tags, limit))
    }

    /// Records `value` for (user, client id) at `now_ms` and returns how long (ms) the
    /// client must be throttled (0 when within its quota or when no quota is configured).
    pub fn record(&self, user: &str, client: &str, value: f64, now_ms: u64) -> u64 {
        if !self.enabled() {
            return 0;
        }
        let (tags, limit) = {
            let Ok(o) = self.overrides.read() else {
                return 0;
            };
            let tags = o.metric_tags(self.types.load(Ordering::Relaxed), user, client);
            let limit = o.limit(&tags.0, &tags.1);
            (tags, limit)
        };
        let Ok(mut s) = self.sensors.lock() else {
            return 0;
        };
        if now_ms.saturating_sub(s.last_purge_ms) >= PURGE_INTERVAL_MS {
            s.last_purge_ms = now_ms;
            s.map
                .retain(|_, v| now_ms.saturating_sub(v.last_record_ms) < SENSOR_EXPIRATION_MS);
        }
        let window = self.window;
        let sensor = s.map.entry(tags).or_insert_with(|| Sensor {
            rate: Rate::new(window),
            last_record_ms: now_ms,
        });
        sensor.rate.record(value, now_ms);
        sensor.last_record_ms = now_ms;
        match limit {
            Some(bound) => sensor.rate.throttle_ms(bound, now_ms),
            None => 0,
        }
    }

    /// Takes back a recorded value (a throttled fetch returns no data, so its bytes do not
    /// count; Kafka's `unrecordQuotaSensor`).
    pub fn unrecord(&self, user: &str, client: &str, value: f64, now_ms: u64) {
        if !self.enabled() {
            return;
        }
        let tags = match self.overrides.read() {
            Ok(o) => o.metric_tags(self.types.load(Ordering::Relaxed), user, client),
            Err(_) => return,
        };
        if let Ok(mut s) = self.sensors.lock() {
            if let Some(sensor) = s.map.get_mut(&tags) {
                sensor.rate.record(-value, now_ms);
            }
        }
    }

    /// Largest value that can be recorded in one go without certain throttling (Kafka's
    /// `getMaxValueInQuotaWindow`: quota × (samples − 1) × window); bounds fetch sizes.
    pub fn max_value_in_window(&self, user: &str, client: &str) -> Option<f64> {
        if !self.enabled() {
            return None;
        }
        let q = self.quota_for(user, client)?;
        Some(q * f64::from(self.window.samples - 1) * (self.window.window_ms as f64 / 1000.0))
    }
}

/// Parsed quota keys of one entity config; other keys (SCRAM credentials) are ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaValues {
    pub producer_byte_rate: Option<f64>,
    pub consumer_byte_rate: Option<f64>,
    pub request_percentage: Option<f64>,
    pub controller_mutation_rate: Option<f64>,
}

impl QuotaValues {
    /// Kafka parses the byte rates as longs and the others as doubles; a value that does
    /// not parse is logged and treated as absent.
    pub fn from_config(config: &BTreeMap<String, String>) -> Self {
        let get = |k: &str, long: bool| -> Option<f64> {
            let v = config.get(k)?.trim();
            let parsed = if long {
                v.parse::<i64>().ok().map(|l| l as f64)
            } else {
                v.parse::<f64>().ok()
            };
            if parsed.is_none() {
                warn!(key = k, value = v, "ignoring malformed quota value");
            }
            parsed
        };
        Self {
            producer_byte_rate: get(quota_config::PRODUCER_BYTE_RATE, true),
            consumer_byte_rate: get(quota_config::CONSUMER_BYTE_RATE, true),
            request_percentage: get(quota_config::REQUEST_PERCENTAGE, false),
            controller_mutation_rate: get(quota_config::CONTROLLER_MUTATION_RATE, false),
        }
    }
}

/// The broker's client quota managers (Kafka's `QuotaFactory.QuotaManagers`). Produce and
/// fetch byte rates and controller mutations are enforced; `request_percentage` is held
/// (so precedence and live updates apply) but not charged.
#[derive(Debug)]
pub struct ClientQuotas {
    pub produce: ClientQuotaManager,
    pub fetch: ClientQuotaManager,
    pub request: ClientQuotaManager,
    /// Which `controller_mutation_rate` applies to whom; the permits are in `mutation_buckets`.
    pub controller_mutation: ClientQuotaManager,
    pub mutation_buckets: super::mutation::MutationBuckets,
    /// `connection_creation_rate` per IP (shared with the acceptors' connection quotas).
    pub ip_connection_rates: std::sync::Arc<super::ip_rates::IpConnectionRates>,
}

impl ClientQuotas {
    /// Quotas with the default controller mutation window (11 × 1 s).
    pub fn new(window: WindowConfig) -> Self {
        Self::with_controller_window(window, 11, 1)
    }

    /// `controller.quota.window.num` / `controller.quota.window.size.seconds` given.
    pub fn with_controller_window(
        window: WindowConfig,
        controller_window_num: i32,
        controller_window_size_seconds: i32,
    ) -> Self {
        Self {
            ip_connection_rates: Default::default(),
            mutation_buckets: super::mutation::MutationBuckets::new(
                controller_window_num,
                controller_window_size_seconds,
            ),
            produce: ClientQuotaManager::new(quota_config::PRODUCER_BYTE_RATE, window),
            fetch: ClientQuotaManager::new(quota_config::CONSUMER_BYTE_RATE, window),
            request: ClientQuotaManager::new(quota_config::REQUEST_PERCENTAGE, window),
            controller_mutation: ClientQuotaManager::new(
                quota_config::CONTROLLER_MUTATION_RATE,
                window,
            ),
        }
    }

    /// An entity's config changed (Kafka's `QuotaConfigHandler.updateQuotaConfig`): every
    /// quota type takes the new value or loses its override.
    pub fn entity_changed(&self, entity: &QuotaEntity, config: &BTreeMap<String, String>) {
        let v = QuotaValues::from_config(config);
        // Only touch managers whose value is or was set, so that a SCRAM-only user config
        // does not turn quota accounting on.
        let apply = |m: &ClientQuotaManager, q: Option<f64>| {
            if q.is_some() || m.enabled() {
                m.update(entity, q);
            }
        };
        apply(&self.produce, v.producer_byte_rate);
        apply(&self.fetch, v.consumer_byte_rate);
        apply(&self.request, v.request_percentage);
        apply(&self.controller_mutation, v.controller_mutation_rate);
    }
}

impl Default for ClientQuotas {
    fn default() -> Self {
        Self::new(WindowConfig::default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn e(user: Option<&str>, client: Option<&str>) -> QuotaEntity {
        let n = |s: &str| {
            if s == "<default>" {
                EntityName::Default
            } else {
                EntityName::Named(s.to_string())
            }
        };
        QuotaEntity::new(user.map(n), client.map(n))
    }

    /// The eight levels, each added in turn from lowest to highest precedence: each new
    /// level takes over from the ones before it for ("u", "c").
    #[test]
    fn precedence_of_the_eight_levels() {
        let m = ClientQuotaManager::new("producer_byte_rate", WindowConfig::default());
        assert_eq!(m.quota_for("u", "c"), None);
        let levels = [
            (None, Some("<default>"), 8.0),
            (None, Some("c"), 7.0),
            (Some("<default>"), None, 6.0),
            (Some("<default>"), Some("<default>"), 5.0),
            (Some("<default>"), Some("c"), 4.0),
            (Some("u"), None, 3.0),
            (Some("u"), Some("<default>"), 2.0),
            (Some("u"), Some("c"), 1.0),
        ];
        for (u, c, q) in levels {
            m.update(&e(u, c), Some(q));
            assert_eq!(m.quota_for("u", "c"), Some(q), "after adding {u:?}/{c:?}");
        }
        // Others see the levels that match them.
        assert_eq!(m.quota_for("u", "other"), Some(2.0));
        assert_eq!(m.quota_for("v", "c"), Some(4.0));
        assert_eq!(m.quota_for("v", "other"), Some(5.0));
        // Removing from the top falls back level by level.
        for i in (1..levels.len()).rev() {
            let (u, c, _) = levels[i];
            m.update(&e(u, c), None);
            assert_eq!(
                m.quota_for("u", "c"),
                Some(levels[i - 1].2),
                "removed {u:?}/{c:?}"
            );
        }
        m.update(&e(None, Some("<default>")), None);
        assert_eq!(m.quota_for("u", "c"), None);
    }

    #[test]
    fn client_only_quotas_and_defaults() {
        let m = ClientQuotaManager::new("producer_byte_rate", WindowConfig::default());
        m.update(&e(None, Some("<default>")), Some(100.0));
        m.update(&e(None, Some("fast")), Some(1000.0));
        assert_eq!(m.quota_for("anyone", "slow"), Some(100.0));
        assert_eq!(m.quota_for("anyone", "fast"), Some(1000.0));
    }

    /// With only a user quota, all of the user's clients share one rate.
    #[test]
    fn user_quota_is_shared_by_the_users_clients() {
        let m = ClientQuotaManager::new("producer_byte_rate", WindowConfig::new(11, 1));
        m.update(&e(Some("u"), None), Some(1000.0));
        // 10,000 bytes from each of two clients over 10 s of padded window: 2,000/s.
        assert_eq!(m.record("u", "a", 10_000.0, 0), 0);
        let t = m.record("u", "b", 10_000.0, 0);
        // (2000 - 1000) / 1000 * 10 s = 10 s.
        assert_eq!(t, 10_000);
        // Another user has no quota: never throttled.
        assert_eq!(m.record("v", "a", 1e9, 0), 0);
    }

    #[test]
    fn nothing_recorded_until_a_quota_exists() {
        let m = ClientQuotaManager::new("consumer_byte_rate", WindowConfig::default());
        assert!(!m.enabled());
        assert_eq!(m.record("u", "c", 1e12, 0), 0);
        assert!(m.sensors.lock().unwrap().map.is_empty());
        m.update(&e(None, Some("c")), Some(10.0));
        assert!(m.record("u", "c", 1e3, 0) > 0);
    }

    #[test]
    fn unrecord_takes_bytes_back_and_removal_lifts_throttling() {
        let m = ClientQuotaManager::new("consumer_byte_rate", WindowConfig::new(11, 1));
        m.update(&e(None, Some("c")), Some(100.0));
        let t = m.record("", "c", 5_000.0, 0);
        assert!(t > 0);
        m.unrecord("", "c", 5_000.0, 0);
        assert_eq!(m.record("", "c", 1.0, 0), 0);
        m.record("", "c", 5_000.0, 0);
        m.update(&e(None, Some("c")), None);
        assert_eq!(m.record("", "c", 5_000.0, 0), 0);
        assert_eq!(m.max_value_in_window("", "c"), None);
        m.update(&e(None, Some("c")), Some(100.0));
        assert_eq!(m.max_value_in_window("", "c"), Some(1000.0));
    }

    #[test]
    fn entity_paths_and_values_parse() {
        assert_eq!(
            QuotaEntity::from_entity_path("users/a%40b/clients/<default>"),
            Some(e(Some("a@b"), Some("<default>")))
        );
        assert_eq!(QuotaEntity::from_entity_path("topics/t"), None);
        let cfg = BTreeMap::from([
            ("producer_byte_rate".to_string(), "1024".to_string()),
            ("consumer_byte_rate".to_string(), "1.5".to_string()),
            ("request_percentage".to_string(), "12.5".to_string()),
            ("SCRAM-SHA-256".to_string(), "salt=x".to_string()),
        ]);
        let v = QuotaValues::from_config(&cfg);
        assert_eq!(v.producer_byte_rate, Some(1024.0));
        assert_eq!(v.consumer_byte_rate, None, "a LONG key refuses 1.5");
        assert_eq!(v.request_percentage, Some(12.5));
        let q = ClientQuotas::default();
        q.entity_changed(&e(Some("u"), None), &cfg);
        assert_eq!(q.produce.quota_for("u", "x"), Some(1024.0));
        assert!(!q.fetch.enabled());
        q.entity_changed(&e(Some("u"), None), &BTreeMap::new());
        assert_eq!(q.produce.quota_for("u", "x"), None);
    }
}
