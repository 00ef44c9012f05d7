//! DescribeConfigs (key 32), v0-v4: topic and broker configs with Kafka's sources,
//! synonyms and types (Kafka `ConfigHelper.describeConfigs`, ZooKeeper mode).
//!
//! Topic values = `/config/topics/<t>` overrides layered on the broker's `log.*`
//! settings. Synonym lists follow Kafka exactly: topic override first, then the
//! broker synonyms as static (`server.properties`) entries, then Kafka defaults, and
//! everything before the main broker name is dropped (which is why `retention.ms`
//! usually shows no synonyms). Broker synonyms come from four layers in Kafka's order:
//! `/config/brokers/<id>` (DYNAMIC_BROKER_CONFIG), `/config/brokers/<default>`
//! (DYNAMIC_DEFAULT_BROKER_CONFIG), server.properties, defaults; the default broker
//! resource (`""`) lists the `<default>` layer. BROKER_LOGGER lists the run-time log
//! levels of [`crate::log_levels`].

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use samsa_common::config::{
    broker_config_def, dynamic, BrokerConfig, ConfigType, TopicConfigDef, BROKER_CONFIGS,
    TOPIC_CONFIGS,
};
use samsa_common::zk::admin::validate_topic_name;
use samsa_common::zk::znodes::config_type;
use tracing::info;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// `ConfigResource.Type` ids.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;

/// `DescribeConfigsResponse.ConfigSource` ids.
pub mod source {
    pub const TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
    pub const DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;
}

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;

/// One described config entry before it is put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
    pub config_type: i8,
    /// `(name, value, source)`, highest precedence first.
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms` with listener overrides: a
/// `listener.name.<l>.<base>` key has `<base>` as its synonym.
pub fn broker_config_synonyms(name: &str) -> Vec<&str> {
    match dynamic::listener_base(name) {
        Some(base) => vec![name, base],
        None => dynamic::synonyms(name),
    }
}

/// The value `name` has in one of the three set layers (static unknown keys included).
fn layer_value<'a>(cfg: &'a BrokerConfig, name: &str, src: i8) -> Option<&'a String> {
    match src {
        source::DYNAMIC_BROKER_CONFIG => cfg.dynamic_broker.get(name),
        source::DYNAMIC_DEFAULT_BROKER_CONFIG => cfg.dynamic_default.get(name),
        _ => cfg.static_props.get(name).or_else(|| {
            (!cfg.dynamic_broker.contains_key(name) && !cfg.dynamic_default.contains_key(name))
                .then(|| cfg.unknown.get(name))
                .flatten()
        }),
    }
}

/// Kafka's `ConfigHelper.configSynonyms`: per-broker dynamic entries, then cluster
/// default ones, then static entries, then defaults, dropping everything before `name`.
fn config_synonyms(
    cfg: &BrokerConfig,
    name: &str,
    sensitive: bool,
) -> Vec<(String, Option<String>, i8)> {
    let names = broker_config_synonyms(name);
    let mut out = Vec::new();
    for src in [
        source::DYNAMIC_BROKER_CONFIG,
        source::DYNAMIC_DEFAULT_BROKER_CONFIG,
        source::STATIC_BROKER_CONFIG,
    ] {
        for n in &names {
            if let Some(v) = layer_value(cfg, n, src) {
                let v = (!sensitive).then(|| v.clone());
                out.push((n.to_string(), v, src));
            }
        }
    }
    for n in &names {
        if let Some(v) = broker_config_def(n).and_then(|d| d.default) {
            let v = (!sensitive).then(|| v.to_string());
            out.push((n.to_string(), v, source::DEFAULT_CONFIG));
        }
    }
    match out.iter().position(|(n, _, _)| n == name) {
        Some(i) => out.split_off(i),
        None => Vec::new(),
    }
}

/// Describe one topic config given the topic's overrides.
pub fn topic_entry(
    cfg: &BrokerConfig,
    def: &TopicConfigDef,
    overrides: &BTreeMap<String, String>,
) -> Entry {
    let value = match overrides.get(def.name) {
        Some(v) => v.clone(),
        None => cfg.topic_default(def).0,
    };
    let mut synonyms = match def.synonyms.first() {
        Some(main) => config_synonyms(cfg, main, false),
        None => Vec::new(),
    };
    if overrides.contains_key(def.name) {
        synonyms.insert(
            0,
            (
                def.name.to_string(),
                Some(value.clone()),
                source::TOPIC_CONFIG,
            ),
        );
    }
    Entry {
        name: def.name.to_string(),
        value: Some(value),
        source: synonyms
            .first()
            .map_or(source::DEFAULT_CONFIG, |(_, _, s)| *s),
        read_only: false,
        sensitive: false,
        config_type: def.ty.code(),
        synonyms,
    }
}

/// All topic configs of `topic` (sorted by name).
pub fn topic_entries(cfg: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    let mut v: Vec<Entry> = TOPIC_CONFIGS
        .iter()
        .map(|d| topic_entry(cfg, d, overrides))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// One broker config as Kafka's `createBrokerConfigEntry` describes it.
fn broker_entry(cfg: &BrokerConfig, name: &str, value: Option<String>, per_broker: bool) -> Entry {
    let def = broker_config_def(name);
    let dynamic_only = dynamic::DYNAMIC_ONLY.contains(&name);
    let ty = def.map(|d| d.ty.code()).unwrap_or(if dynamic_only {
        ConfigType::Long.code()
    } else {
        0
    });
    // Kafka's `maybeSensitive`: passwords and keys of unknown type.
    let sensitive = def.is_some_and(|d| d.sensitive || d.ty == ConfigType::Password)
        || (def.is_none() && !dynamic_only)
        || dynamic::is_password(name);
    let synonyms: Vec<_> = config_synonyms(cfg, name, sensitive)
        .into_iter()
        .filter(|(_, _, s)| per_broker || *s == source::DYNAMIC_DEFAULT_BROKER_CONFIG)
        .collect();
    Entry {
        name: name.to_string(),
        value: if sensitive { None } else { value },
        source: synonyms
            .first()
            .map_or(source::DEFAULT_CONFIG, |(_, _, s)| *s),
        read_only: !dynamic::is_dynamic(name),
        sensitive,
        config_type: ty,
        synonyms,
    }
}

/// The cluster-default resource (empty name): the `<default>` layer's keys only.
pub fn default_broker_entries(cfg: &BrokerConfig) -> Vec<Entry> {
    cfg.dynamic_default
        .iter()
        .map(|(k, v)| broker_entry(cfg, k, Some(v.clone()), false))
        .collect()
}

/// All configs of this broker (`perBrokerConfig = true`), sorted by name. Unknown keys
/// (static or dynamic) are included as Kafka does (type UNKNOWN, hence sensitive), and so
/// are the dynamic-only throttle keys when set.
pub fn broker_entries(cfg: &BrokerConfig) -> Vec<Entry> {
    let mut v: Vec<Entry> = BROKER_CONFIGS
        .iter()
        .map(|d| broker_entry(cfg, d.name, cfg.get(d.name), true))
        .collect();
    let extra = cfg
        .unknown
        .iter()
        .chain(cfg.dynamic_default.iter())
        .chain(cfg.dynamic_broker.iter())
        .filter(|(k, _)| broker_config_def(k).is_none())
        .map(|(k, _)| k.clone())
        .collect::<std::collections::BTreeSet<_>>();
    for k in extra {
        let value = cfg
            .dynamic_broker
            .get(&k)
            .or_else(|| cfg.dynamic_default.get(&k))
            .or_else(|| cfg.unknown.get(&k))
            .cloned();
        v.push(broker_entry(cfg, &k, value, true));
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Only fields that exist at `version` are set (kafka-protocol refuses to encode others).
fn to_wire(e: Entry, include_synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default();
    r.name = StrBytes::from_string(e.name);
    r.value = e.value.map(StrBytes::from_string);
    r.read_only = e.read_only;
    if version == 0 {
        r.is_default = e.source == source::DEFAULT_CONFIG;
    } else {
        r.config_source = e.source;
    }
    r.is_sensitive = e.sensitive;
    if version >= 3 {
        r.config_type = e.config_type;
    }
    r.documentation = None;
    if include_synonyms {
        r.synonyms = e
            .synonyms
            .into_iter()
            .map(|(n, v, s)| {
                let mut syn = DescribeConfigsSynonym::default();
                syn.name = StrBytes::from_string(n);
                syn.value = v.map(StrBytes::from_string);
                syn.source = s;
                syn
            })
            .collect();
    }
    r
}

fn error_result(code: i16, message: Option<String>) -> DescribeConfigsResult {
    let mut r = DescribeConfigsResult::default();
    r.error_code = code;
    r.error_message = message.map(StrBytes::from_string);
    r
}

/// Filter by requested keys (none / empty = all).
fn filter(entries: Vec<Entry>, keys: &Option<Vec<StrBytes>>) -> Vec<Entry> {
    match keys {
        Some(k) if !k.is_empty() => entries
            .into_iter()
            .filter(|e| k.iter().any(|n| n.as_str() == e.name))
            .collect(),
        _ => entries,
    }
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DescribeConfigsRequest,
) -> Result<DescribeConfigsResponse> {
    let version = header.request_api_version;
    let include_synonyms = version >= 1 && req.include_synonyms;
    let cfg = ctx.dynamic.current();
    let mut resp = DescribeConfigsResponse::default();
    // DESCRIBE_CONFIGS on the topic, or on the cluster for broker and logger resources;
    // Kafka answers the refused resources after the others, with the error's message.
    let mut refused = Vec::new();
    for res in req.resources {
        let name = res.resource_name.as_str().to_string();
        if let Some(rt) = config_resource_denied(
            ctx,
            conn,
            Operation::DescribeConfigs,
            &res.resource_type,
            &name,
        ) {
            let mut out = error_result(
                denied_error(rt).code(),
                Some(enforce::denied_message(rt).to_string()),
            );
            out.resource_type = res.resource_type;
            out.resource_name = res.resource_name;
            refused.push(out);
            continue;
        }
        let mut out = match res.resource_type {
            RESOURCE_TOPIC => {
                describe_topic(
                    ctx,
                    &name,
                    &res.configuration_keys,
                    include_synonyms,
                    version,
                )
                .await
            }
            RESOURCE_BROKER => {
                if name.is_empty() {
                    let mut r = DescribeConfigsResult::default();
                    r.configs = filter(default_broker_entries(&cfg), &res.configuration_keys)
                        .into_iter()
                        .map(|e| to_wire(e, include_synonyms, version))
                        .collect();
                    r
                } else {
                    match name.parse::<i32>() {
                        Err(_) => error_result(
                            INVALID_REQUEST,
                            Some(format!("Broker id must be an integer, but it is: {name}")),
                        ),
                        Ok(id) if id != ctx.broker_id => error_result(
                            INVALID_REQUEST,
                            Some(format!(
                                "Unexpected broker id, expected {} or empty string, but received {name}",
                                ctx.broker_id
                            )),
                        ),
                        Ok(_) => {
                            let mut r = DescribeConfigsResult::default();
                            r.configs = filter(broker_entries(&cfg), &res.configuration_keys)
                                .into_iter()
                                .map(|e| to_wire(e, include_synonyms, version))
                                .collect();
                            r
                        }
                    }
                }
            }
            RESOURCE_BROKER_LOGGER => {
                if name.is_empty() {
                    error_result(INVALID_REQUEST, Some("Broker id must not be empty".into()))
                } else if name.parse::<i32>().is_err() {
                    error_result(
                        INVALID_REQUEST,
                        Some(format!("Broker id must be an integer, but it is: {name}")),
                    )
                } else if name.parse::<i32>().ok() != Some(ctx.broker_id) {
                    error_result(
                        INVALID_REQUEST,
                        Some(format!(
                            "Unexpected broker id, expected {} but received {name}",
                            ctx.broker_id
                        )),
                    )
                } else {
                    // Kafka's `Log4jController.loggers`, mapped onto tracing targets.
                    let mut r = DescribeConfigsResult::default();
                    let entries: Vec<Entry> = crate::log_levels::describe()
                        .into_iter()
                        .map(|(name, level)| Entry {
                            name,
                            value: Some(level),
                            source: source::DYNAMIC_BROKER_LOGGER_CONFIG,
                            read_only: false,
                            sensitive: false,
                            config_type: 0,
                            synonyms: Vec::new(),
                        })
                        .collect();
                    r.configs = filter(entries, &res.configuration_keys)
                        .into_iter()
                        .map(|e| to_wire(e, include_synonyms, version))
                        .collect();
                    r
                }
            }
            other => error_result(
                INVALID_REQUEST,
                Some(format!("Unsupported resource type: {other}")),
            ),
        };
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name;
        resp.results.push(out);
    }
    resp.results.extend(refused);
    Ok(resp)
}

/// The resource type whose refusal applies when `op` on config resource `rt`/`name` is
/// denied: TOPIC for topics, CLUSTER for brokers and broker loggers; `None` when allowed
/// (or for resource types Kafka does not authorize).
pub fn config_resource_denied(
    ctx: &BrokerContext,
    conn: &ConnInfo,
    op: Operation,
    rt: &i8,
    name: &str,
) -> Option<ResourceType> {
    match *rt {
        RESOURCE_TOPIC => (!enforce::allow(ctx, conn, op, ResourceType::Topic, name))
            .then_some(ResourceType::Topic),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => {
            (!enforce::cluster(ctx, conn, op)).then_some(ResourceType::Cluster)
        }
        _ => None,
    }
}

async fn describe_topic(
    ctx: &Arc<BrokerContext>,
    topic: &str,
    keys: &Option<Vec<StrBytes>>,
    include_synonyms: bool,
    version: i16,
) -> DescribeConfigsResult {
    if let Err(e) = validate_topic_name(topic) {
        return error_result(17, Some(api_message(&e)));
    }
    if !ctx.metadata_cache.snapshot().contains_topic(topic) {
        return error_result(UNKNOWN_TOPIC_OR_PARTITION, None);
    }
    let Some(zk) = ctx.zk() else {
        return error_result(
            UNKNOWN_SERVER_ERROR,
            Some("not connected to ZooKeeper".into()),
        );
    };
    let overrides = match zk.get_entity_config(config_type::TOPIC, topic).await {
        Ok(o) => o,
        Err(e) => {
            info!(topic, error = %e, "describe configs: reading topic config failed");
            return error_result(UNKNOWN_SERVER_ERROR, Some(e.to_string()));
        }
    };
    let mut r = DescribeConfigsResult::default();
    r.configs = filter(topic_entries(&ctx.dynamic.current(), &overrides), keys)
        .into_iter()
        .map(|e| to_wire(e, include_synonyms, version))
        .collect();
    r
}

const UNKNOWN_SERVER_ERROR: i16 = -1;

/// The message of a common-crate error as Kafka would put it in a response.
pub fn api_message(e: &samsa_common::error::Error) -> String {
    match e {
        samsa_common::error::Error::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(extra: &[(&str, &str)]) -> BrokerConfig {
        let mut p: HashMap<String, String> = HashMap::new();
        p.insert("zookeeper.connect".into(), "z:1".into());
        p.insert("broker.id".into(), "1".into());
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        BrokerConfig::from_props(&p).expect("config")
    }

    fn find<'a>(v: &'a [Entry], n: &str) -> &'a Entry {
        v.iter().find(|e| e.name == n).expect(n)
    }

    #[test]
    fn topic_defaults_sources_and_synonyms() {
        let c = cfg(&[("log.retention.hours", "1")]);
        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "compact".to_string());
        let e = topic_entries(&c, &o);
        assert_eq!(e.len(), TOPIC_CONFIGS.len());

        // retention.ms: derived from log.retention.hours, but Kafka drops the synonyms
        // (none named log.retention.ms) and reports DEFAULT_CONFIG.
        let r = find(&e, "retention.ms");
        assert_eq!(r.value.as_deref(), Some("3600000"));
        assert_eq!(r.source, source::DEFAULT_CONFIG);
        assert!(r.synonyms.is_empty());
        assert_eq!(r.config_type, 5);

        // cleanup.policy overridden: TOPIC_CONFIG first, then the broker default.
        let cp = find(&e, "cleanup.policy");
        assert_eq!(cp.value.as_deref(), Some("compact"));
        assert_eq!(cp.source, source::TOPIC_CONFIG);
        assert_eq!(
            cp.synonyms,
            vec![
                (
                    "cleanup.policy".into(),
                    Some("compact".into()),
                    source::TOPIC_CONFIG
                ),
                (
                    "log.cleanup.policy".into(),
                    Some("delete".into()),
                    source::DEFAULT_CONFIG
                ),
            ]
        );
        assert_eq!(cp.config_type, 7);

        // max.message.bytes comes from message.max.bytes' default.
        let m = find(&e, "max.message.bytes");
        assert_eq!(m.value.as_deref(), Some("1048588"));
        assert_eq!(m.source, source::DEFAULT_CONFIG);
        assert_eq!(m.synonyms.len(), 1);

        // No broker synonym at all.
        let t = find(&e, "leader.replication.throttled.replicas");
        assert_eq!(t.value.as_deref(), Some(""));
        assert!(t.synonyms.is_empty());
    }

    #[test]
    fn topic_static_broker_synonym() {
        let c = cfg(&[
            ("log.segment.bytes", "1048576"),
            ("log.retention.ms", "5000"),
        ]);
        let e = topic_entries(&c, &BTreeMap::new());
        let s = find(&e, "segment.bytes");
        assert_eq!(s.value.as_deref(), Some("1048576"));
        assert_eq!(s.source, source::STATIC_BROKER_CONFIG);
        assert_eq!(
            s.synonyms,
            vec![
                (
                    "log.segment.bytes".into(),
                    Some("1048576".into()),
                    source::STATIC_BROKER_CONFIG
                ),
                (
                    "log.segment.bytes".into(),
                    Some("1073741824".into()),
                    source::DEFAULT_CONFIG
                ),
            ]
        );
        let r = find(&e, "retention.ms");
        assert_eq!(r.source, source::STATIC_BROKER_CONFIG);
        assert_eq!(r.value.as_deref(), Some("5000"));
        // ms (static), hours (default).
        assert_eq!(r.synonyms.len(), 2);
        assert_eq!(r.synonyms[1].0, "log.retention.hours");
    }

    #[test]
    fn broker_entries_read_only_and_unknown() {
        let c = cfg(&[("some.unknown", "secret")]);
        let e = broker_entries(&c);
        let id = find(&e, "broker.id");
        assert_eq!(id.value.as_deref(), Some("1"));
        assert_eq!(id.source, source::STATIC_BROKER_CONFIG);
        assert!(id.read_only);
        let seg = find(&e, "log.segment.bytes");
        assert!(!seg.read_only);
        assert_eq!(seg.source, source::DEFAULT_CONFIG);
        let rms = find(&e, "log.retention.ms");
        assert_eq!(rms.value, None);
        assert!(rms.synonyms.is_empty());
        let rh = find(&e, "log.retention.hours");
        assert_eq!(
            rh.synonyms,
            vec![("log.retention.hours".into(), Some("168".into()), 5)]
        );
        let u = find(&e, "some.unknown");
        assert!(u.sensitive);
        assert_eq!(u.value, None);
        assert!(e.windows(2).all(|w| w[0].name < w[1].name));
    }
}
