//! The client-quota half of Kafka's `ZkAdminManager` (3.9, ZooKeeper mode): what
//! DescribeClientQuotas reads from and AlterClientQuotas writes to ZooKeeper.
//!
//! Entities are maps of entity type (`user`, `client-id`, `ip`) to a name, `None` being
//! the `<default>` entity. They live in the same znodes `kafka-configs.sh` writes:
//! `/config/users/<u>`, `/config/users/<u>/clients/<c>`, `/config/clients/<c>` and
//! `/config/ips/<ip>`, names sanitized (`samsa_common::zk::znodes::sanitize_entity_name`),
//! the default spelled `<default>`. An alteration rewrites the whole entity config and
//! then creates a `/config/changes` notification, so every broker (this one included)
//! applies it through the change listener; an entity left without keys and without
//! children is deleted instead, with its empty parents, as Kafka's `tryCleanQuotaNodes`.
//!
//! Errors follow Kafka: malformed entities and filters are INVALID_REQUEST with Kafka's
//! messages, custom entity types in a filter UNSUPPORTED_VERSION, and what Kafka reports as
//! an unexpected exception (a config znode that does not parse, a value its `ConfigDef`
//! refuses) UNKNOWN_SERVER_ERROR without a message.

use std::collections::BTreeMap;
use std::net::IpAddr;

use samsa_common::zk::admin;
use samsa_common::zk::session::ZkSession;
use samsa_common::zk::znodes::{
    config_type, desanitize_entity_name, quota_config, sanitize_entity_name, ConfigEntityZNode,
};
use tracing::{info, warn};

/// Entity types of `ClientQuotaEntity`.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// The IP quota key (Kafka's `QuotaConfigs.IP_CONNECTION_RATE_OVERRIDE_CONFIG`).
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

const INVALID_REQUEST: i16 = 42;
const UNSUPPORTED_VERSION: i16 = 35;
const UNKNOWN_SERVER_ERROR: i16 = -1;

/// An error code and message as Kafka's `ApiError.fromThrowable` yields them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaError {
    pub code: i16,
    pub message: Option<String>,
}

impl QuotaError {
    fn invalid(msg: impl Into<String>) -> Self {
        Self {
            code: INVALID_REQUEST,
            message: Some(msg.into()),
        }
    }

    /// An unexpected failure: Kafka never reveals its message.
    pub fn unknown() -> Self {
        Self {
            code: UNKNOWN_SERVER_ERROR,
            message: None,
        }
    }
}

impl From<samsa_common::error::Error> for QuotaError {
    fn from(e: samsa_common::error::Error) -> Self {
        warn!(error = %e, "client quota operation failed");
        Self::unknown()
    }
}

type Result<T> = std::result::Result<T, QuotaError>;

/// A quota entity: (entity type, name) pairs, `None` naming the default entity. At most one
/// pair per type (later pairs of a type replace earlier ones, as in Kafka's map).
pub type Entity = Vec<(String, Option<String>)>;

/// What a filter component matches (`ClientQuotaFilterComponent.match`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// MATCH_TYPE_EXACT: this name.
    Exact(String),
    /// MATCH_TYPE_DEFAULT: the default entity.
    Default,
    /// MATCH_TYPE_SPECIFIED: any name, default included.
    Specified,
}

impl Match {
    /// `Some(name)` for exact and default matches (Kafka's `toOption(match)`).
    fn wanted(&self) -> Option<Option<&str>> {
        match self {
            Match::Exact(n) => Some(Some(n)),
            Match::Default => Some(None),
            Match::Specified => None,
        }
    }

    fn matches(&self, name: &Option<String>) -> bool {
        match self.wanted() {
            Some(w) => name.as_deref() == w,
            None => true,
        }
    }
}

/// One filter component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub entity_type: String,
    pub matching: Match,
}

/// One described entity and its quota values.
pub type Described = (Entity, BTreeMap<String, f64>);

fn sanitized(name: Option<&str>) -> String {
    name.map_or_else(
        || config_type::DEFAULT_ENTITY.to_string(),
        sanitize_entity_name,
    )
}

fn desanitized(name: &str) -> Option<String> {
    if name == config_type::DEFAULT_ENTITY {
        None
    } else {
        // A name with a broken escape is shown as stored rather than failing the request.
        Some(desanitize_entity_name(name).unwrap_or_else(|| name.to_string()))
    }
}

/// Kafka's `clientQuotaPropsToDoubleMap`: a value that is not a number fails the request.
fn to_doubles(props: BTreeMap<String, String>) -> Result<BTreeMap<String, f64>> {
    props
        .into_iter()
        .map(|(k, v)| match v.trim().parse::<f64>() {
            Ok(d) => Ok((k, d)),
            Err(_) => {
                warn!(
                    key = k,
                    value = v,
                    "unexpected client quota configuration value"
                );
                Err(QuotaError::unknown())
            }
        })
        .collect()
}

async fn fetch(zk: &ZkSession, entity_type: &str, name: &str) -> Result<BTreeMap<String, String>> {
    Ok(zk.get_entity_config(entity_type, name).await?)
}

async fn children(zk: &ZkSession, path: &str) -> Result<Vec<String>> {
    Ok(zk.children(path).await?.unwrap_or_default())
}

fn type_path(entity_type: &str) -> String {
    samsa_common::zk::znodes::ConfigEntityTypeZNode::path(entity_type)
}

/// DescribeClientQuotas (`ZkAdminManager.describeClientQuotas`).
pub async fn describe(
    zk: &ZkSession,
    components: &[Component],
    strict: bool,
) -> Result<Vec<Described>> {
    let (mut user, mut client, mut ip) = (None, None, None);
    for c in components {
        let (slot, what) = match c.entity_type.as_str() {
            USER => (&mut user, "user"),
            CLIENT_ID => (&mut client, "client"),
            IP => (&mut ip, "ip"),
            "" => {
                return Err(QuotaError::invalid(
                    "Unexpected empty filter component entity type",
                ))
            }
            other => {
                return Err(QuotaError {
                    code: UNSUPPORTED_VERSION,
                    message: Some(format!("Custom entity type '{other}' not supported")),
                })
            }
        };
        if slot.is_some() {
            return Err(QuotaError::invalid(format!(
                "Duplicate {what} filter component entity type"
            )));
        }
        *slot = Some(&c.matching);
    }
    if (user.is_some() || client.is_some()) && ip.is_some() {
        return Err(QuotaError::invalid(
            "Invalid entity filter component combination, IP filter component should not be \
             used with user or clientId filter component.",
        ));
    }
    let mut out = Vec::new();
    if ip.is_none() {
        out.extend(describe_user_client(zk, user, client, strict).await?);
    }
    if user.is_none() && client.is_none() {
        out.extend(describe_ips(zk, ip, strict).await?);
    }
    Ok(out)
}

type Found = Vec<(
    (Option<Option<String>>, Option<Option<String>>),
    BTreeMap<String, String>,
)>;

async fn describe_user_client(
    zk: &ZkSession,
    user: Option<&Match>,
    client: Option<&Match>,
    strict: bool,
) -> Result<Vec<Described>> {
    let want_user = user.and_then(Match::wanted);
    let want_client = client.and_then(Match::wanted);
    let exclude_user = strict && user.is_none();
    let exclude_client = strict && client.is_none();
    let owned = |n: Option<&str>| n.map(str::to_string);

    let mut found: Found = Vec::new();
    // Users alone.
    if let (Some(u), true) = (want_user, exclude_client) {
        let props = fetch(zk, config_type::USER, &sanitized(u)).await?;
        found.push(((Some(owned(u)), None), props));
    } else if !exclude_user && want_client.is_none() {
        for name in children(zk, &type_path(config_type::USER)).await? {
            let props = fetch(zk, config_type::USER, &name).await?;
            found.push(((Some(desanitized(&name)), None), props));
        }
    }
    // Client ids alone.
    if let (Some(c), true) = (want_client, exclude_user) {
        let props = fetch(zk, config_type::CLIENT, &sanitized(c)).await?;
        found.push(((None, Some(owned(c))), props));
    } else if want_user.is_none() && !exclude_client {
        for name in children(zk, &type_path(config_type::CLIENT)).await? {
            let props = fetch(zk, config_type::CLIENT, &name).await?;
            found.push(((None, Some(desanitized(&name))), props));
        }
    }
    // Users' client ids.
    let clients = quota_config::CLIENTS_CHILD;
    if let (Some(u), Some(c)) = (want_user, want_client) {
        let path = format!("{}/{clients}/{}", sanitized(u), sanitized(c));
        let props = fetch(zk, config_type::USER, &path).await?;
        found.push(((Some(owned(u)), Some(owned(c))), props));
    } else if !exclude_user && !exclude_client {
        for u in children(zk, &type_path(config_type::USER)).await? {
            let under = format!("{}/{u}/{clients}", type_path(config_type::USER));
            for c in children(zk, &under).await? {
                let props = fetch(zk, config_type::USER, &format!("{u}/{clients}/{c}")).await?;
                found.push(((Some(desanitized(&u)), Some(desanitized(&c))), props));
            }
        }
    }

    let matches = |m: Option<&Match>, name: &Option<Option<String>>| match (m, name) {
        (Some(m), Some(n)) => m.matches(n),
        (Some(_), None) => false,
        (None, n) => n.is_none() || !strict,
    };
    let mut out = Vec::new();
    for ((u, c), props) in found {
        let quota: BTreeMap<String, String> = props
            .into_iter()
            .filter(|(k, _)| quota_config::ALL.contains(&k.as_str()))
            .collect();
        if quota.is_empty() || !matches(user, &u) || !matches(client, &c) {
            continue;
        }
        let mut entity = Entity::new();
        if let Some(u) = u {
            entity.push((USER.to_string(), u));
        }
        if let Some(c) = c {
            entity.push((CLIENT_ID.to_string(), c));
        }
        out.push((entity, to_doubles(quota)?));
    }
    Ok(out)
}

async fn describe_ips(zk: &ZkSession, ip: Option<&Match>, strict: bool) -> Result<Vec<Described>> {
    let mut found = Vec::new();
    match ip.and_then(Match::wanted) {
        Some(name) => {
            let props = fetch(zk, config_type::IP, &sanitized(name)).await?;
            found.push((name.map(str::to_string), props));
        }
        None if ip.is_some() || !strict => {
            for name in children(zk, &type_path(config_type::IP)).await? {
                let props = fetch(zk, config_type::IP, &name).await?;
                found.push((desanitized(&name), props));
            }
        }
        None => {}
    }
    let mut out = Vec::new();
    for (name, props) in found {
        let quota: BTreeMap<String, String> = props
            .into_iter()
            .filter(|(k, _)| k == CONNECTION_CREATION_RATE)
            .collect();
        if !quota.is_empty() {
            out.push((vec![(IP.to_string(), name)], to_doubles(quota)?));
        }
    }
    Ok(out)
}

/// Kafka's `ConfigDef.Type` of the quota keys an entity accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    Long,
    Int,
    Double,
    /// SCRAM credentials in a user's config: known, but not a quota.
    Str,
}

fn user_client_key(key: &str) -> Option<KeyType> {
    match key {
        quota_config::PRODUCER_BYTE_RATE | quota_config::CONSUMER_BYTE_RATE => Some(KeyType::Long),
        quota_config::REQUEST_PERCENTAGE | quota_config::CONTROLLER_MUTATION_RATE => {
            Some(KeyType::Double)
        }
        _ => None,
    }
}

/// `DynamicConfig.User` keys: the quota keys plus one SCRAM key per mechanism.
fn user_key(key: &str) -> Option<KeyType> {
    match key {
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => Some(KeyType::Str),
        k => user_client_key(k),
    }
}

fn ip_key(key: &str) -> Option<KeyType> {
    (key == CONNECTION_CREATION_RATE).then_some(KeyType::Int)
}

/// Where an altered entity lives.
struct Target {
    entity_type: &'static str,
    /// Sanitized name below `/config/<type>` (`u/clients/c` for a user's client).
    path: String,
    /// The keys alteration ops may set (`DynamicConfig.User.configKeys` for both user forms).
    op_keys: fn(&str) -> Option<KeyType>,
    /// The keys the resulting config may hold (`AdminZkClient`'s validation).
    config_keys: fn(&str) -> Option<KeyType>,
    user_client: bool,
}

/// Kafka's `parseAndSanitizeQuotaEntity` and the entity-combination checks of
/// `alterClientQuotas`.
async fn target(entity: &Entity) -> Result<Target> {
    if entity.is_empty() {
        return Err(QuotaError::invalid("Invalid empty client quota entity"));
    }
    let (mut user, mut client, mut ip) = (None, None, None);
    for (ty, name) in entity {
        let s = sanitized(name.as_deref());
        match ty.as_str() {
            USER => user = Some(s),
            CLIENT_ID => client = Some(s),
            IP => ip = Some(s),
            other => {
                return Err(QuotaError::invalid(format!(
                    "Unhandled client quota entity type: {other}"
                )))
            }
        }
        if name.as_deref() == Some("") {
            return Err(QuotaError::invalid(format!("Empty {ty} not supported")));
        }
    }
    let clients = quota_config::CLIENTS_CHILD;
    Ok(match (user, client, ip) {
        (Some(u), Some(c), None) => Target {
            entity_type: config_type::USER,
            path: format!("{u}/{clients}/{c}"),
            op_keys: user_key,
            config_keys: user_client_key,
            user_client: true,
        },
        (Some(u), None, None) => Target {
            entity_type: config_type::USER,
            config_keys: if u == config_type::DEFAULT_ENTITY {
                user_client_key
            } else {
                user_key
            },
            path: u,
            op_keys: user_key,
            user_client: false,
        },
        (None, Some(c), None) => Target {
            entity_type: config_type::CLIENT,
            path: c,
            op_keys: user_client_key,
            config_keys: user_client_key,
            user_client: false,
        },
        (None, None, Some(ip)) => {
            if !valid_ip_entity(&ip).await {
                return Err(QuotaError::invalid(format!(
                    "{ip} is not a valid IP or resolvable host."
                )));
            }
            Target {
                entity_type: config_type::IP,
                path: ip,
                op_keys: ip_key,
                config_keys: ip_key,
                user_client: false,
            }
        }
        (_, _, Some(_)) => {
            return Err(QuotaError::invalid(
                "Invalid quota entity combination, IP entity should not be used with user/client ID entity.",
            ))
        }
        _ => return Err(QuotaError::invalid("Invalid client quota entity")),
    })
}

/// Kafka's `DynamicConfig.Ip.isValidIpEntity`: `<default>`, an address, or a name that
/// resolves (checked on the sanitized name, as Kafka does, so IPv6 literals are refused).
pub async fn valid_ip_entity(ip: &str) -> bool {
    if ip == config_type::DEFAULT_ENTITY || ip.parse::<IpAddr>().is_ok() {
        return true;
    }
    match tokio::net::lookup_host((ip, 0)).await {
        Ok(mut addrs) => addrs.next().is_some(),
        Err(_) => false,
    }
}

/// One alteration op: set `key` to `value`, or remove it (`None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub key: String,
    pub value: Option<f64>,
}

/// Applies `ops` to `props` as Kafka does: removals never fail; integral types must be
/// within 1e-6 of an integer (after Kafka's truncation toward zero, which refuses negative
/// whole numbers too); doubles are written the way Java prints them.
fn apply_ops(
    props: &mut BTreeMap<String, String>,
    ops: &[Op],
    keys: fn(&str) -> Option<KeyType>,
) -> Result<()> {
    const EPSILON: f64 = 1e-6;
    for op in ops {
        let Some(value) = op.value else {
            props.remove(&op.key);
            continue;
        };
        let ty = keys(&op.key)
            .ok_or_else(|| QuotaError::invalid(format!("Invalid configuration key {}", op.key)))?;
        let text = match ty {
            KeyType::Double => java_double_to_string(value),
            KeyType::Long | KeyType::Int => {
                let (whole, name) = if ty == KeyType::Long {
                    ((value + EPSILON) as i64 as f64, "LONG")
                } else {
                    (f64::from((value + EPSILON) as i32), "INT")
                };
                if (whole - value).abs() > EPSILON {
                    return Err(QuotaError::invalid(format!(
                        "Configuration {} must be a {name} value",
                        op.key
                    )));
                }
                format!("{whole:.0}")
            }
            // Kafka's IllegalStateException "Unexpected config type STRING".
            KeyType::Str => return Err(QuotaError::unknown()),
        };
        props.insert(op.key.clone(), text);
    }
    Ok(())
}

/// `AdminZkClient`'s validation of the config about to be written (`DynamicConfig.*.validate`):
/// unknown keys or values the `ConfigDef` cannot parse are unexpected errors.
fn validate_config(
    props: &BTreeMap<String, String>,
    keys: fn(&str) -> Option<KeyType>,
) -> Result<()> {
    for (k, v) in props {
        let v = v.trim();
        let ok = match keys(k) {
            None => false,
            Some(KeyType::Long) => v.parse::<i64>().is_ok(),
            Some(KeyType::Int) => v.parse::<i32>().is_ok_and(|i| i >= 0),
            Some(KeyType::Double) => v.parse::<f64>().is_ok(),
            Some(KeyType::Str) => true,
        };
        if !ok {
            info!(
                key = k,
                "refusing client quota config Kafka's ConfigDef would not accept"
            );
            return Err(QuotaError::unknown());
        }
    }
    Ok(())
}

/// AlterClientQuotas for one entity (`alterEntityQuotas`).
pub async fn alter(zk: &ZkSession, entity: &Entity, ops: &[Op], validate_only: bool) -> Result<()> {
    let t = target(entity).await?;
    let mut props = fetch(zk, t.entity_type, &t.path).await?;
    apply_ops(&mut props, ops, t.op_keys)?;
    if validate_only {
        return Ok(());
    }
    validate_config(&props, t.config_keys)?;
    let written = if props.is_empty() {
        !clean_empty_entity(zk, &t).await?
    } else {
        true
    };
    if written {
        admin::set_or_create_entity_config(zk, t.entity_type, &t.path, &props).await?;
    }
    admin::create_config_change_notification(zk, &format!("{}/{}", t.entity_type, t.path)).await?;
    Ok(())
}

/// Kafka's `tryCleanQuotaNodes`: an entity left empty and without children is deleted, and
/// so are `/config/users/<u>/clients` and the user node when nothing else remains under them.
/// True when the entity node was deleted (nothing to write).
async fn clean_empty_entity(zk: &ZkSession, t: &Target) -> Result<bool> {
    let current = ConfigEntityZNode::path(t.entity_type, &t.path);
    if !children(zk, &current).await?.is_empty() {
        return Ok(false);
    }
    let mut delete = current;
    if t.user_client {
        let clients = quota_config::CLIENTS_CHILD;
        if let Some((user, client)) = t.path.split_once(&format!("/{clients}/")) {
            let clients_path = ConfigEntityZNode::path(t.entity_type, &format!("{user}/{clients}"));
            if children(zk, &clients_path).await? == [client.to_string()] {
                delete = clients_path;
                let user_path = ConfigEntityZNode::path(t.entity_type, user);
                if fetch(zk, t.entity_type, user).await?.is_empty()
                    && children(zk, &user_path).await? == [clients.to_string()]
                {
                    delete = user_path;
                }
            }
        }
    }
    info!(path = delete, "deleting empty client quota znode");
    zk.delete_recursive(&delete).await?;
    Ok(true)
}

/// Java's `Double.toString`: plain decimals in [1e-3, 1e7), computerized scientific
/// notation (`1.0E7`) outside, always with a fractional digit. Kafka writes DOUBLE quota
/// values this way, so the znodes match byte for byte.
pub fn java_double_to_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        return if s.contains('.') { s } else { s + ".0" };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exp}")
    } else {
        format!("{mantissa}.0E{exp}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use samsa_common::zk::session::ZkConfig;
    use samsa_common::zk::testing::TestZk;
    use std::time::Duration;

    #[test]
    fn doubles_print_as_java_prints_them() {
        for (v, s) in [
            (12.5, "12.5"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (1e7, "1.0E7"),
            (1.25e7, "1.25E7"),
            (1e-4, "1.0E-4"),
            (9_999_999.5, "9999999.5"),
            (-3.0, "-3.0"),
            (0.0, "0.0"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(java_double_to_string(v), s);
        }
    }

    fn op(k: &str, v: Option<f64>) -> Op {
        Op {
            key: k.into(),
            value: v,
        }
    }

    #[test]
    fn ops_follow_kafkas_type_rules() {
        let mut p = BTreeMap::new();
        apply_ops(
            &mut p,
            &[
                op("producer_byte_rate", Some(1024.0)),
                op("request_percentage", Some(50.0)),
                op("controller_mutation_rate", Some(1e8)),
            ],
            user_key,
        )
        .unwrap();
        assert_eq!(p["producer_byte_rate"], "1024");
        assert_eq!(p["request_percentage"], "50.0");
        assert_eq!(p["controller_mutation_rate"], "1.0E8");
        let e = apply_ops(&mut p, &[op("consumer_byte_rate", Some(1.5))], user_key).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Configuration consumer_byte_rate must be a LONG value")
        );
        // Kafka truncates -2 + 1e-6 toward zero: negative whole numbers are refused.
        assert_eq!(
            apply_ops(&mut p, &[op("consumer_byte_rate", Some(-2.0))], user_key)
                .unwrap_err()
                .code,
            INVALID_REQUEST
        );
        let e = apply_ops(&mut p, &[op("bogus", Some(1.0))], user_key).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Invalid configuration key bogus")
        );
        assert_eq!(
            apply_ops(&mut p, &[op("SCRAM-SHA-256", Some(1.0))], user_key).unwrap_err(),
            QuotaError::unknown()
        );
        // Removing an unknown key is fine.
        apply_ops(
            &mut p,
            &[op("bogus", None), op("producer_byte_rate", None)],
            user_key,
        )
        .unwrap();
        assert!(!p.contains_key("producer_byte_rate"));
        let e = apply_ops(&mut p, &[op(CONNECTION_CREATION_RATE, Some(2.5))], ip_key).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Configuration connection_creation_rate must be a INT value")
        );
        let mut ip = BTreeMap::new();
        apply_ops(&mut ip, &[op(CONNECTION_CREATION_RATE, Some(10.0))], ip_key).unwrap();
        assert_eq!(ip[CONNECTION_CREATION_RATE], "10");
    }

    fn ent(pairs: &[(&str, Option<&str>)]) -> Entity {
        pairs
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    #[tokio::test]
    async fn entity_validation_messages() {
        let bad = |e: Entity| async move { target(&e).await.err().unwrap() };
        assert_eq!(
            bad(ent(&[])).await.message.as_deref(),
            Some("Invalid empty client quota entity")
        );
        assert_eq!(
            bad(ent(&[("group", Some("g"))])).await.message.as_deref(),
            Some("Unhandled client quota entity type: group")
        );
        assert_eq!(
            bad(ent(&[("user", Some(""))])).await.message.as_deref(),
            Some("Empty user not supported")
        );
        assert_eq!(
            bad(ent(&[("user", Some("u")), ("ip", Some("1.2.3.4"))]))
                .await
                .message
                .as_deref(),
            Some("Invalid quota entity combination, IP entity should not be used with user/client ID entity.")
        );
        assert_eq!(
            bad(ent(&[("ip", Some("::1"))])).await.message.as_deref(),
            Some("%3A%3A1 is not a valid IP or resolvable host.")
        );
        let t = target(&ent(&[("user", Some("a@b")), ("client-id", None)]))
            .await
            .unwrap();
        assert_eq!(t.path, "a%40b/clients/<default>");
        assert!(target(&ent(&[("ip", None)])).await.is_ok());
        assert!(target(&ent(&[("ip", Some("10.0.0.1"))])).await.is_ok());
    }

    async fn session(chroot: &str) -> (TestZk, ZkSession) {
        let server = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            server.connect_string_with_chroot(chroot),
            Duration::from_secs(10),
        ))
        .await
        .unwrap();
        zk.create_top_level_paths().await.unwrap();
        (server, zk)
    }

    async fn data(zk: &ZkSession, path: &str) -> Option<serde_json::Value> {
        let (d, _) = zk.get(path).await.unwrap()?;
        Some(serde_json::from_slice(&d).unwrap())
    }

    fn comp(t: &str, m: Match) -> Component {
        Component {
            entity_type: t.into(),
            matching: m,
        }
    }

    /// Writes land in Kafka's znodes with a change notification; filters select as
    /// Kafka's; emptied entities are deleted with their empty parents.
    #[tokio::test]
    async fn alter_then_describe_against_zookeeper() {
        let (_server, zk) = session("/cq").await;
        let set = |k: &str, v: f64| vec![op(k, Some(v))];
        alter(
            &zk,
            &ent(&[("user", Some("alice"))]),
            &set("producer_byte_rate", 1000.0),
            false,
        )
        .await
        .unwrap();
        alter(
            &zk,
            &ent(&[("user", Some("alice")), ("client-id", Some("app 1"))]),
            &set("consumer_byte_rate", 2000.0),
            false,
        )
        .await
        .unwrap();
        alter(
            &zk,
            &ent(&[("client-id", None)]),
            &set("request_percentage", 12.5),
            false,
        )
        .await
        .unwrap();
        alter(
            &zk,
            &ent(&[("ip", None)]),
            &set(CONNECTION_CREATION_RATE, 5.0),
            false,
        )
        .await
        .unwrap();
        // validate_only writes nothing.
        alter(
            &zk,
            &ent(&[("user", Some("bob"))]),
            &set("producer_byte_rate", 1.0),
            true,
        )
        .await
        .unwrap();
        assert!(zk.exists("/config/users/bob").await.unwrap().is_none());

        assert_eq!(
            data(&zk, "/config/users/alice/clients/app%201")
                .await
                .unwrap(),
            serde_json::json!({"version":1,"config":{"consumer_byte_rate":"2000"}})
        );
        assert_eq!(
            data(&zk, "/config/clients/<default>").await.unwrap(),
            serde_json::json!({"version":1,"config":{"request_percentage":"12.5"}})
        );
        let changes = children(&zk, "/config/changes").await.unwrap();
        assert_eq!(changes.len(), 4);
        let mut paths = Vec::new();
        for c in &changes {
            let v = data(&zk, &format!("/config/changes/{c}")).await.unwrap();
            assert_eq!(v["version"], 2);
            paths.push(v["entity_path"].as_str().unwrap().to_string());
        }
        paths.sort();
        assert_eq!(
            paths,
            [
                "clients/<default>",
                "ips/<default>",
                "users/alice",
                "users/alice/clients/app%201"
            ]
        );

        // Everything, not strict: users, clients, user/clients and ips.
        let all = describe(&zk, &[], false).await.unwrap();
        assert_eq!(all.len(), 4, "{all:?}");
        // Strict on user=alice: only the user entity.
        let only = describe(&zk, &[comp(USER, Match::Exact("alice".into()))], true)
            .await
            .unwrap();
        assert_eq!(
            only,
            vec![(
                ent(&[("user", Some("alice"))]),
                BTreeMap::from([("producer_byte_rate".to_string(), 1000.0)])
            )]
        );
        // Not strict on user=alice: the user and its clients.
        let loose = describe(&zk, &[comp(USER, Match::Exact("alice".into()))], false)
            .await
            .unwrap();
        assert_eq!(loose.len(), 2);
        // Default client id, strict: null name in the answer.
        let d = describe(&zk, &[comp(CLIENT_ID, Match::Default)], true)
            .await
            .unwrap();
        assert_eq!(d[0].0, ent(&[("client-id", None)]));
        // Specified clients of any user, strict.
        let s = describe(
            &zk,
            &[
                comp(USER, Match::Specified),
                comp(CLIENT_ID, Match::Specified),
            ],
            true,
        )
        .await
        .unwrap();
        assert_eq!(
            s[0].0,
            ent(&[("user", Some("alice")), ("client-id", Some("app 1"))])
        );
        let ips = describe(&zk, &[comp(IP, Match::Specified)], false)
            .await
            .unwrap();
        assert_eq!(
            ips,
            vec![(
                ent(&[("ip", None)]),
                BTreeMap::from([(CONNECTION_CREATION_RATE.to_string(), 5.0)])
            )]
        );
        // Filter errors.
        let e = describe(
            &zk,
            &[comp(USER, Match::Specified), comp(IP, Match::Specified)],
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, INVALID_REQUEST);
        let e = describe(&zk, &[comp("group", Match::Specified)], false)
            .await
            .unwrap_err();
        assert_eq!(e.code, UNSUPPORTED_VERSION);
        assert_eq!(
            e.message.as_deref(),
            Some("Custom entity type 'group' not supported")
        );
        let e = describe(
            &zk,
            &[comp(USER, Match::Default), comp(USER, Match::Default)],
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Duplicate user filter component entity type")
        );

        // Removing alice's client quota deletes the client node and the clients parent, but
        // the user keeps its own quota.
        alter(
            &zk,
            &ent(&[("user", Some("alice")), ("client-id", Some("app 1"))]),
            &[op("consumer_byte_rate", None)],
            false,
        )
        .await
        .unwrap();
        assert!(zk
            .exists("/config/users/alice/clients")
            .await
            .unwrap()
            .is_none());
        assert!(zk.exists("/config/users/alice").await.unwrap().is_some());
        alter(
            &zk,
            &ent(&[("user", Some("alice"))]),
            &[op("producer_byte_rate", None)],
            false,
        )
        .await
        .unwrap();
        assert!(zk.exists("/config/users/alice").await.unwrap().is_none());
        assert_eq!(describe(&zk, &[], false).await.unwrap().len(), 2);

        // A value Kafka's ConfigDef refuses, written by hand, fails describe.
        admin::change_entity_config(
            &zk,
            config_type::CLIENT,
            "junk",
            &BTreeMap::from([("producer_byte_rate".to_string(), "lots".to_string())]),
        )
        .await
        .unwrap();
        assert_eq!(
            describe(&zk, &[], false).await.unwrap_err(),
            QuotaError::unknown()
        );
    }
}
