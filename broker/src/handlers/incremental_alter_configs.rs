//! IncrementalAlterConfigs (key 44), v0-v1: SET / DELETE / APPEND / SUBTRACT on a
//! resource's configs (Kafka `ConfigAdminManager.preprocess` +
//! `ZkAdminManager.incrementalAlterConfigs`, ZooKeeper mode).
//!
//! For topics the current overrides are read from `/config/topics/<t>`, the operations
//! applied in order, and the result validated and written back as a whole (plus a
//! change notification) — see [`crate::handlers::alter_configs::alter_topic`].
//! Brokers likewise with the dynamic config layer `/config/brokers/<id>` or `<default>`
//! (decoded, operations applied, validated and re-encoded). BROKER_LOGGER changes this
//! broker's log levels at once ([`crate::log_levels`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::config::{broker_config_def, topic_config_def, ConfigType};
use samsa_common::zk::znodes::config_type;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::handlers::alter_configs::{
    alter_broker, alter_topic, broker_resource, duplicate_resources, Outcome, INVALID_CONFIG,
    INVALID_REQUEST, UNKNOWN_SERVER_ERROR,
};
use crate::handlers::describe_configs::{
    api_message, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC,
};
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// `AlterConfigOp.OpType` ids.
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

/// Kafka's `prepareIncrementalConfigs` for topic configs: apply `ops` to `props` in order.
pub fn apply_topic_ops(
    ops: &[AlterableConfig],
    props: &mut BTreeMap<String, String>,
) -> std::result::Result<(), Outcome> {
    apply_ops(ops, props, &|name| {
        topic_config_def(name).map(|d| (d.ty, Some(d.default.to_string())))
    })
}

/// Kafka's `prepareIncrementalConfigs` for broker configs (`KafkaConfig.configKeys`).
pub fn apply_broker_ops(
    ops: &[AlterableConfig],
    props: &mut BTreeMap<String, String>,
) -> std::result::Result<(), Outcome> {
    apply_ops(ops, props, &|name| {
        broker_config_def(name).map(|d| (d.ty, d.default.map(str::to_string)))
    })
}

/// Type and default of a config name, for APPEND/SUBTRACT.
type DefOf<'a> = &'a dyn Fn(&str) -> Option<(ConfigType, Option<String>)>;

fn apply_ops(
    ops: &[AlterableConfig],
    props: &mut BTreeMap<String, String>,
    def_of: DefOf<'_>,
) -> std::result::Result<(), Outcome> {
    for op in ops {
        let name = op.name.as_str();
        let value = op.value.as_ref().map(|v| v.as_str()).unwrap_or("");
        match op.config_operation {
            OP_SET => {
                props.insert(name.to_string(), value.to_string());
            }
            OP_DELETE => {
                props.remove(name);
            }
            OP_APPEND | OP_SUBTRACT => {
                let verb = if op.config_operation == OP_APPEND {
                    "append"
                } else {
                    "subtract"
                };
                let (ty, default) = def_of(name).ok_or_else(|| {
                    (INVALID_CONFIG, Some(format!("Unknown config name: {name}")))
                })?;
                if ty != ConfigType::List {
                    return Err((
                        INVALID_CONFIG,
                        Some(format!(
                            "Config value {verb} is not allowed for config key: {name}"
                        )),
                    ));
                }
                let old = props.get(name).cloned().or(default).unwrap_or_default();
                let mut list: Vec<String> = old
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let given: Vec<&str> = value.split(',').collect();
                if op.config_operation == OP_APPEND {
                    for v in given {
                        if !list.iter().any(|x| x == v) {
                            list.push(v.to_string());
                        }
                    }
                } else {
                    list.retain(|x| !given.contains(&x.as_str()));
                }
                props.insert(name.to_string(), list.join(","));
            }
            other => {
                return Err((
                    INVALID_REQUEST,
                    Some(format!("Unknown operations type {other}")),
                ))
            }
        }
    }
    Ok(())
}

/// Kafka's `ConfigAdminManager` for BROKER_LOGGER: only this broker's id, SET with a valid
/// level or DELETE of a non-root logger; levels change at once and are not persisted.
fn alter_loggers(
    broker_id: i32,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Outcome {
    match name.parse::<i32>() {
        Err(_) => {
            return (
                INVALID_REQUEST,
                Some(format!("Node id must be an integer, but it is: {name}")),
            )
        }
        Ok(id) if id != broker_id => {
            return (
                INVALID_REQUEST,
                Some(format!(
                    "Unexpected broker id, expected {broker_id}, but received {name}"
                )),
            )
        }
        Ok(_) => {}
    }
    let mut changes = Vec::with_capacity(ops.len());
    for op in ops {
        let logger = op.name.as_str();
        let level = op.value.as_ref().map(|v| v.as_str());
        match op.config_operation {
            OP_SET => changes.push((logger, Some(level.unwrap_or("")))),
            OP_DELETE => changes.push((logger, None)),
            OP_APPEND | OP_SUBTRACT => {
                let verb = if op.config_operation == OP_APPEND {
                    "APPEND"
                } else {
                    "SUBTRACT"
                };
                return (
                    INVALID_REQUEST,
                    Some(format!(
                        "{verb} operation is not allowed for the BROKER_LOGGER resource"
                    )),
                );
            }
            other => {
                return (
                    INVALID_REQUEST,
                    Some(format!(
                    "Unknown operation type {other} is not allowed for the BROKER_LOGGER resource"
                )),
                )
            }
        }
    }
    match crate::log_levels::alter(&changes, validate_only) {
        Ok(()) => (0, None),
        Err((code, msg)) => (code, Some(msg)),
    }
}

async fn alter_one_topic(
    ctx: &Arc<BrokerContext>,
    topic: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Outcome {
    if topic.is_empty() {
        return (
            INVALID_REQUEST,
            Some("Default topic resources are not allowed.".into()),
        );
    }
    let Some(zk) = ctx.zk() else {
        return (
            UNKNOWN_SERVER_ERROR,
            Some("not connected to ZooKeeper".into()),
        );
    };
    let mut props = match zk.get_entity_config(config_type::TOPIC, topic).await {
        Ok(p) => p,
        Err(e) => return (UNKNOWN_SERVER_ERROR, Some(api_message(&e))),
    };
    if let Err(o) = apply_topic_ops(ops, &mut props) {
        return o;
    }
    alter_topic(ctx, topic, &props, validate_only).await
}

/// Kafka's `validateBrokerConfigChange` for IncrementalAlterConfigs: the stored layer
/// (decoded) with `ops` applied becomes the layer's new content.
async fn alter_one_broker(
    ctx: &Arc<BrokerContext>,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
    authorized: bool,
) -> Outcome {
    let per_broker = match broker_resource(ctx, name) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let (zk, entity) = match super::alter_configs::broker_entity(ctx, name, per_broker) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let stored = match zk.get_entity_config(config_type::BROKER, &entity).await {
        Ok(p) => p,
        // A znode another tool garbled: start from an empty layer, as if it were absent.
        Err(samsa_common::error::Error::InvalidZnode { .. }) => BTreeMap::new(),
        Err(e) => return (UNKNOWN_SERVER_ERROR, Some(api_message(&e))),
    };
    let mut props = ctx.dynamic.from_persistent(&stored, per_broker);
    if let Err(o) = apply_broker_ops(ops, &mut props) {
        return o;
    }
    alter_broker(ctx, name, &props, validate_only, authorized).await
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: IncrementalAlterConfigsRequest,
) -> Result<IncrementalAlterConfigsResponse> {
    let dups = duplicate_resources(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in &req.resources {
        let name = res.resource_name.as_str();
        let keys: Vec<String> = res.configs.iter().map(|c| c.name.to_string()).collect();
        let nulls: Vec<&str> = res
            .configs
            .iter()
            .filter(|c| c.config_operation != OP_DELETE && c.value.is_none())
            .map(|c| c.name.as_str())
            .collect();
        let outcome = if dups.contains(&(res.resource_type, name.to_string())) {
            (
                INVALID_REQUEST,
                Some("Each resource must appear at most once.".into()),
            )
        } else if !nulls.is_empty() {
            (
                INVALID_REQUEST,
                Some(format!(
                    "Null value not supported for : {}",
                    nulls.join(", ")
                )),
            )
        } else if res.resource_type == RESOURCE_BROKER_LOGGER {
            // Done entirely in Kafka's preprocessing step, so no duplicate-key check; the
            // cluster's ALTER_CONFIGS is checked before the resource.
            if enforce::cluster(ctx, conn, Operation::AlterConfigs) {
                alter_loggers(ctx.broker_id, name, &res.configs, req.validate_only)
            } else {
                (
                    denied_error(ResourceType::Cluster).code(),
                    Some(enforce::denied_message(ResourceType::Cluster).into()),
                )
            }
        } else if keys.iter().collect::<HashSet<_>>().len() != keys.len() {
            (
                INVALID_REQUEST,
                Some("Error due to duplicate config keys".into()),
            )
        } else {
            match res.resource_type {
                RESOURCE_TOPIC => {
                    if enforce::allow(
                        ctx,
                        conn,
                        Operation::AlterConfigs,
                        ResourceType::Topic,
                        name,
                    ) {
                        alter_one_topic(ctx, name, &res.configs, req.validate_only).await
                    } else {
                        (denied_error(ResourceType::Topic).code(), None)
                    }
                }
                RESOURCE_BROKER => {
                    let authorized = enforce::cluster(ctx, conn, Operation::AlterConfigs);
                    alter_one_broker(ctx, name, &res.configs, req.validate_only, authorized).await
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

    fn op(name: &str, op: i8, value: Option<&str>) -> AlterableConfig {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(name.to_string());
        c.config_operation = op;
        c.value = value.map(|v| StrBytes::from_string(v.to_string()));
        c
    }

    #[test]
    fn broker_logger_checks() {
        let set = |n: &str, v: &str| op(n, OP_SET, Some(v));
        assert_eq!(
            alter_loggers(1, "2", &[set("root", "INFO")], false).1,
            Some("Unexpected broker id, expected 1, but received 2".into())
        );
        assert_eq!(alter_loggers(1, "x", &[], false).0, INVALID_REQUEST);
        assert_eq!(
            alter_loggers(1, "1", &[op("kafka", OP_APPEND, Some("INFO"))], false),
            (
                INVALID_REQUEST,
                Some("APPEND operation is not allowed for the BROKER_LOGGER resource".into())
            )
        );
        assert_eq!(
            alter_loggers(1, "1", &[set("kafka", "LOUD")], false).0,
            INVALID_CONFIG
        );
        assert_eq!(
            alter_loggers(1, "1", &[op("root", OP_DELETE, None)], false).0,
            INVALID_REQUEST
        );
        // validate_only changes nothing; a real SET shows up in the described levels.
        let name = "samsa_broker::handlers::incremental_alter_configs";
        assert_eq!(
            alter_loggers(1, "1", &[set(name, "TRACE")], true),
            (0, None)
        );
        assert!(!crate::log_levels::describe().iter().any(|(n, _)| n == name));
        assert_eq!(
            alter_loggers(1, "1", &[set(name, "TRACE")], false),
            (0, None)
        );
        assert!(crate::log_levels::describe().contains(&(name.into(), "TRACE".into())));
        assert_eq!(
            alter_loggers(1, "1", &[op(name, OP_DELETE, None)], false),
            (0, None)
        );
        assert!(!crate::log_levels::describe().iter().any(|(n, _)| n == name));
    }

    #[test]
    fn set_delete_append_subtract() {
        let mut p = BTreeMap::new();
        p.insert("retention.ms".to_string(), "1".to_string());
        apply_topic_ops(
            &[
                op("segment.bytes", OP_SET, Some("1048576")),
                op("retention.ms", OP_DELETE, None),
                op("cleanup.policy", OP_APPEND, Some("compact")),
                op(
                    "leader.replication.throttled.replicas",
                    OP_APPEND,
                    Some("0:1,1:2"),
                ),
            ],
            &mut p,
        )
        .expect("ops");
        assert_eq!(p.get("segment.bytes").map(String::as_str), Some("1048576"));
        assert!(!p.contains_key("retention.ms"));
        assert_eq!(
            p.get("cleanup.policy").map(String::as_str),
            Some("delete,compact")
        );
        assert_eq!(
            p.get("leader.replication.throttled.replicas")
                .map(String::as_str),
            Some("0:1,1:2")
        );
        apply_topic_ops(&[op("cleanup.policy", OP_SUBTRACT, Some("delete"))], &mut p)
            .expect("subtract");
        assert_eq!(p.get("cleanup.policy").map(String::as_str), Some("compact"));
    }

    #[test]
    fn append_to_non_list_is_invalid_config() {
        let mut p = BTreeMap::new();
        let e = apply_topic_ops(&[op("retention.ms", OP_APPEND, Some("1"))], &mut p)
            .expect_err("not a list");
        assert_eq!(e.0, INVALID_CONFIG);
        assert_eq!(
            e.1.as_deref(),
            Some("Config value append is not allowed for config key: retention.ms")
        );
        let e = apply_topic_ops(&[op("x", 9, Some("1"))], &mut p).expect_err("bad op");
        assert_eq!(e.0, INVALID_REQUEST);
    }
}
