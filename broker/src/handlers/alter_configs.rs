//! AlterConfigs (key 33), v0-v2: full replacement of a resource's configs (Kafka
//! `ZkAdminManager.alterConfigs`, ZooKeeper mode).
//!
//! Topics: validated like `LogConfig.validate`, then `/config/topics/<t>` is rewritten
//! and a `/config/changes/config_change_<seq>` notification created (every broker,
//! this one included, applies it from its change watcher). Brokers: the dynamic broker
//! config layer `/config/brokers/<id>` or `<default>` is replaced the same way, after
//! Kafka's checks (see [`crate::dynamic_config`]). The shared topic/broker helpers live
//! here and are used by IncrementalAlterConfigs too.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use samsa_common::config::{topic_config_def, validate_topic_config, BrokerConfig};
use samsa_common::zk::admin;
use samsa_common::zk::znodes::config_type;
use tracing::info;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::handlers::describe_configs::{api_message, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const INVALID_CONFIG: i16 = 40;
pub const INVALID_REQUEST: i16 = 42;

/// `(error_code, error_message)` of one resource.
pub type Outcome = (i16, Option<String>);

pub const OK: Outcome = (0, None);

/// Kafka's `ConfigResource.toString`.
pub fn resource_string(resource_type: i8, name: &str) -> String {
    let t = match resource_type {
        2 => "TOPIC",
        4 => "BROKER",
        8 => "BROKER_LOGGER",
        16 => "CLIENT_METRICS",
        _ => "UNKNOWN",
    };
    format!("ConfigResource(type={t}, name='{name}')")
}

/// Kafka's `LogConfig.validate` (ZooKeeper mode, tiered storage off) for a full set of
/// topic overrides layered on the broker defaults.
pub fn validate_topic_props(
    cfg: &BrokerConfig,
    topic: &str,
    props: &BTreeMap<String, String>,
) -> Outcome {
    for (k, v) in props {
        if topic_config_def(k).is_none() {
            return (
                INVALID_CONFIG,
                Some(format!("Unknown topic config name: {k}")),
            );
        }
        if let Err(e) = validate_topic_config(k, v) {
            return (
                INVALID_CONFIG,
                Some(format!(
                    "Invalid config value for resource {}: {e}",
                    resource_string(RESOURCE_TOPIC, topic)
                )),
            );
        }
    }
    let is_true = |k: &str| {
        props
            .get(k)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    };
    if is_true("remote.log.delete.on.disable") || is_true("remote.log.copy.disable") {
        return (
            INVALID_CONFIG,
            Some("It is invalid to set `remote.log.delete.on.disable` or `remote.log.copy.disable` under Zookeeper's mode.".into()),
        );
    }
    if is_true("remote.storage.enable") {
        return (
            INVALID_CONFIG,
            Some(format!(
                "Invalid config value for resource {}: Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
                resource_string(RESOURCE_TOPIC, topic)
            )),
        );
    }
    let defaults = cfg.topic_defaults();
    let lag = |k: &str| {
        props
            .get(k)
            .or_else(|| defaults.get(k))
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let (Some(min), Some(max)) = (lag("min.compaction.lag.ms"), lag("max.compaction.lag.ms")) {
        if min > max {
            return (
                INVALID_CONFIG,
                Some(format!(
                    "conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"
                )),
            );
        }
    }
    OK
}

/// Validate and (unless `validate_only`) write a topic's complete override set.
pub async fn alter_topic(
    ctx: &Arc<BrokerContext>,
    topic: &str,
    props: &BTreeMap<String, String>,
    validate_only: bool,
) -> Outcome {
    if topic.is_empty() {
        return (
            INVALID_REQUEST,
            Some("Default topic resources are not allowed.".into()),
        );
    }
    if !ctx.metadata_cache.snapshot().contains_topic(topic) {
        return (
            UNKNOWN_TOPIC_OR_PARTITION,
            Some(format!("The topic '{topic}' does not exist.")),
        );
    }
    let v = validate_topic_props(&ctx.dynamic.current(), topic, props);
    if v.0 != 0 || validate_only {
        return v;
    }
    let Some(zk) = ctx.zk() else {
        return (
            UNKNOWN_SERVER_ERROR,
            Some("not connected to ZooKeeper".into()),
        );
    };
    info!(topic, config = ?props, "updating topic with new configuration");
    match admin::change_topic_config(&zk, topic, props).await {
        Ok(()) => OK,
        Err(e) => (
            e.api_code().unwrap_or(UNKNOWN_SERVER_ERROR),
            Some(api_message(&e)),
        ),
    }
}

/// The session and the `/config/brokers/<entity>` name a broker resource writes to: this
/// broker's id for a per-broker change, `<default>` for a cluster-wide one.
pub fn broker_entity(
    ctx: &BrokerContext,
    name: &str,
    per_broker: bool,
) -> std::result::Result<(samsa_common::zk::session::ZkSession, String), Outcome> {
    let Some(zk) = ctx.zk() else {
        return Err((
            UNKNOWN_SERVER_ERROR,
            Some("not connected to ZooKeeper".into()),
        ));
    };
    let entity = if per_broker {
        name.to_string()
    } else {
        config_type::DEFAULT_ENTITY.to_string()
    };
    Ok((zk, entity))
}

/// Kafka's resource-name check for BROKER resources (`validateResourceNameIsCurrentNodeId`):
/// `Ok(true)` = this broker's layer, `Ok(false)` = the cluster default (empty name).
pub fn broker_resource(ctx: &BrokerContext, name: &str) -> std::result::Result<bool, Outcome> {
    if name.is_empty() {
        return Ok(false);
    }
    match name.parse::<i32>() {
        Err(_) => Err((
            INVALID_REQUEST,
            Some(format!("Node id must be an integer, but it is: {name}")),
        )),
        Ok(id) if id != ctx.broker_id => Err((
            INVALID_REQUEST,
            Some(format!(
                "Unexpected broker id, expected {}, but received {name}",
                ctx.broker_id
            )),
        )),
        Ok(_) => Ok(true),
    }
}

/// A BROKER resource change (Kafka's `ConfigAdminManager.validateBrokerConfigChange` then
/// `ZkAdminManager.alterBrokerConfigs`): `props` is the layer's complete new content
/// (`/config/brokers/<id>` or `<default>`). Validation errors are INVALID_REQUEST with
/// Kafka's text; `authorized` (ALTER_CONFIGS on the cluster) is checked after them, as
/// Kafka checks it after preprocessing. The broker applies the new layer from its
/// `/config/changes` listener, like every other broker.
pub async fn alter_broker(
    ctx: &BrokerContext,
    name: &str,
    props: &BTreeMap<String, String>,
    validate_only: bool,
    authorized: bool,
) -> Outcome {
    let per_broker = match broker_resource(ctx, name) {
        Ok(p) => p,
        Err(o) => return o,
    };
    if let Err(msg) = ctx.dynamic.validate(props, per_broker) {
        return (INVALID_REQUEST, Some(msg));
    }
    if !authorized {
        return (denied_error(ResourceType::Cluster).code(), None);
    }
    if validate_only {
        return OK;
    }
    let persistent = match ctx.dynamic.to_persistent(props, per_broker) {
        Ok(p) => p,
        Err(msg) => {
            return (
                INVALID_CONFIG,
                Some(format!(
                    "Invalid config value for resource {}: {msg}",
                    resource_string(RESOURCE_BROKER, name)
                )),
            )
        }
    };
    let (zk, entity) = match broker_entity(ctx, name, per_broker) {
        Ok(v) => v,
        Err(o) => return o,
    };
    // Values may be secrets: log the keys only.
    info!(broker = %entity, keys = ?props.keys().collect::<Vec<_>>(), "updating broker configuration");
    match admin::change_entity_config(&zk, config_type::BROKER, &entity, &persistent).await {
        Ok(()) => OK,
        Err(e) => (
            e.api_code().unwrap_or(UNKNOWN_SERVER_ERROR),
            Some(api_message(&e)),
        ),
    }
}

/// Kafka's `ConfigAdminManager.preprocess` check: a resource may appear only once.
pub fn duplicate_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> HashSet<(i8, String)> {
    let mut seen = HashSet::new();
    let mut dup = HashSet::new();
    for (t, n) in resources {
        if !seen.insert((t, n.to_string())) {
            dup.insert((t, n.to_string()));
        }
    }
    dup
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: AlterConfigsRequest,
) -> Result<AlterConfigsResponse> {
    let dups = duplicate_resources(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut resp = AlterConfigsResponse::default();
    for res in &req.resources {
        let name = res.resource_name.as_str();
        let keys: Vec<String> = res.configs.iter().map(|c| c.name.to_string()).collect();
        let outcome = if dups.contains(&(res.resource_type, name.to_string())) {
            (
                INVALID_REQUEST,
                Some("Each resource must appear at most once.".into()),
            )
        } else if ![RESOURCE_TOPIC, RESOURCE_BROKER].contains(&res.resource_type) {
            // Kafka checks the type before anything else; BROKER_LOGGER (8) ends up here,
            // since only IncrementalAlterConfigs changes log levels.
            (
                INVALID_REQUEST,
                Some(format!("Unknown resource type {}", res.resource_type)),
            )
        } else if keys.iter().collect::<HashSet<_>>().len() != keys.len() {
            (
                INVALID_REQUEST,
                Some("Error due to duplicate config keys".into()),
            )
        } else if res.configs.iter().any(|c| c.value.is_none()) {
            let nulls: Vec<&str> = res
                .configs
                .iter()
                .filter(|c| c.value.is_none())
                .map(|c| c.name.as_str())
                .collect();
            (
                INVALID_REQUEST,
                Some(format!(
                    "Null value not supported for : {}",
                    nulls.join(", ")
                )),
            )
        } else {
            match res.resource_type {
                RESOURCE_TOPIC => {
                    let props: BTreeMap<String, String> = res
                        .configs
                        .iter()
                        .filter_map(|c| {
                            c.value
                                .as_ref()
                                .map(|v| (c.name.to_string(), v.to_string()))
                        })
                        .collect();
                    if !enforce::allow(
                        ctx,
                        conn,
                        Operation::AlterConfigs,
                        ResourceType::Topic,
                        name,
                    ) {
                        (denied_error(ResourceType::Topic).code(), None)
                    } else {
                        alter_topic(ctx, name, &props, req.validate_only).await
                    }
                }
                RESOURCE_BROKER => {
                    let props: BTreeMap<String, String> = res
                        .configs
                        .iter()
                        .filter_map(|c| {
                            c.value
                                .as_ref()
                                .map(|v| (c.name.to_string(), v.to_string()))
                        })
                        .collect();
                    let authorized = enforce::cluster(ctx, conn, Operation::AlterConfigs);
                    alter_broker(ctx, name, &props, req.validate_only, authorized).await
                }
                other => (
                    INVALID_REQUEST,
                    Some(format!("Unknown resource type {other}")),
                ),
            }
        };
        let mut r = AlterConfigsResourceResponse::default();
        r.error_code = outcome.0;
        r.error_message = outcome.1.map(StrBytes::from_string);
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        resp.responses.push(r);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BrokerConfig {
        let p =
            std::collections::HashMap::from([("zookeeper.connect".to_string(), "z:1".to_string())]);
        BrokerConfig::from_props(&p).expect("cfg")
    }

    #[test]
    fn topic_validation_messages() {
        let c = cfg();
        let mut p = BTreeMap::new();
        p.insert("retention.ms".to_string(), "1000".to_string());
        assert_eq!(validate_topic_props(&c, "t", &p), OK);
        p.insert("bogus".to_string(), "1".to_string());
        assert_eq!(
            validate_topic_props(&c, "t", &p),
            (
                INVALID_CONFIG,
                Some("Unknown topic config name: bogus".into())
            )
        );
        p.remove("bogus");
        p.insert("segment.bytes".to_string(), "abc".to_string());
        let (code, msg) = validate_topic_props(&c, "t", &p);
        assert_eq!(code, INVALID_CONFIG);
        let msg = msg.expect("message");
        assert!(
            msg.starts_with("Invalid config value for resource ConfigResource(type=TOPIC, name='t'): Invalid value abc for configuration segment.bytes"),
            "{msg}"
        );
        p.remove("segment.bytes");
        p.insert("min.compaction.lag.ms".into(), "10".into());
        p.insert("max.compaction.lag.ms".into(), "5".into());
        assert_eq!(validate_topic_props(&c, "t", &p).0, INVALID_CONFIG);
        p.clear();
        p.insert("remote.storage.enable".into(), "true".into());
        assert_eq!(validate_topic_props(&c, "t", &p).0, INVALID_CONFIG);
        p.clear();
        p.insert("retention.ms".into(), "-2".into());
        assert_eq!(validate_topic_props(&c, "t", &p).0, INVALID_CONFIG);
    }

    #[test]
    fn duplicates() {
        let d = duplicate_resources([(2, "a"), (2, "b"), (2, "a"), (4, "a")].into_iter());
        assert_eq!(d.len(), 1);
        assert!(d.contains(&(2, "a".to_string())));
    }
}
