//! Metadata (key 3), v0-v12, answered from the metadata cache like Kafka 3.9's
//! ZooKeeper-mode `KafkaApis.handleTopicMetadataRequest`.
//!
//! Endpoints are those of the listener the client connected to; brokers without
//! that listener are left out. v0 hides replicas whose broker is down; v6+ report
//! LISTENER_NOT_FOUND when the leader is alive but lacks the listener. Missing
//! topics are auto-created when `auto.create.topics.enable` and the request allow it.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId as KBrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::BrokerContext;
use crate::connection::{Chunk, ConnInfo};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::metadata_cache::{FullAnswerKey, MetadataSnapshot};
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// Kafka's internal topics.
pub const GROUP_METADATA_TOPIC: &str = "__consumer_offsets";
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Authorized-operations bit field when no authorizer is configured: every
/// operation a topic supports (READ WRITE CREATE DELETE ALTER DESCRIBE
/// DESCRIBE_CONFIGS ALTER_CONFIGS).
pub const TOPIC_ALL_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Same for the cluster resource (CREATE ALTER DESCRIBE CLUSTER_ACTION
/// DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE).
pub const CLUSTER_ALL_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
/// "Not requested" marker for authorized operations.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub fn is_internal(topic: &str) -> bool {
    topic == GROUP_METADATA_TOPIC || topic == TRANSACTION_STATE_TOPIC
}

/// Kafka's `Topic.validate`: 1-249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        return Err(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Whether `req` asks for every topic (null list, or an empty one at v0).
fn asks_all_topics(req: &MetadataRequest, version: i16) -> bool {
    match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    }
}

/// Right after start-up the controller's first UpdateMetadata may not have arrived yet; an
/// answer without brokers or controller leaves librdkafka waiting for a controller until
/// its next periodic refresh (minutes). Give the first update a moment (ZK brokers only).
async fn wait_first_update(ctx: &Arc<BrokerContext>) {
    if ctx.zk().is_some() && ctx.metadata_cache.snapshot().brokers.is_empty() {
        crate::handlers::create_topics::wait_for_metadata(
            ctx,
            std::time::Duration::from_secs(5),
            |s| !s.brokers.is_empty(),
        )
        .await;
    }
}

/// The dispatch entry: the answer as encoded bytes. A full answer (all topics) with no
/// authorizer depends only on the snapshot, the version, the listener and two flags, so it
/// is encoded once per snapshot and shared by every later request until the next
/// UpdateMetadata (`MetadataSnapshot::full_answers`); at 10,000 partitions this turns
/// milliseconds of building and encoding per request into a reference-count increment.
pub async fn respond(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: MetadataRequest,
) -> Result<Option<Vec<Chunk>>> {
    let version = header.request_api_version;
    if !asks_all_topics(&req, version) || enforce::enabled(ctx) {
        return dispatch::respond(header, handle(ctx, conn, header, req).await?);
    }
    wait_first_update(ctx).await;
    let snap = ctx.metadata_cache.snapshot();
    let key = FullAnswerKey {
        version,
        listener: conn.listener.to_string(),
        topic_operations: version >= 8 && req.include_topic_authorized_operations,
        cluster_operations: (8..=10).contains(&version)
            && req.include_cluster_authorized_operations,
        cluster_id: ctx.cluster_id(),
    };
    let body = match snap.full_answers.get(&key) {
        Some(b) => b,
        None => {
            let resp = answer(ctx, conn, header, req, &snap).await?;
            let mut buf = BytesMut::new();
            resp.encode(&mut buf, version)
                .map_err(|e| Error::Internal(format!("encoding response: {e}")))?;
            let b = buf.freeze();
            snap.full_answers.put(key, b.clone());
            b
        }
    };
    dispatch::respond_chunks::<MetadataResponse>(header, vec![Chunk::Bytes(body)])
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: MetadataRequest,
) -> Result<MetadataResponse> {
    wait_first_update(ctx).await;
    let snap = ctx.metadata_cache.snapshot();
    answer(ctx, conn, header, req, &snap).await
}

/// The answer to `req` from `snap`.
async fn answer(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: MetadataRequest,
    snap: &MetadataSnapshot,
) -> Result<MetadataResponse> {
    let version = header.request_api_version;
    let listener: &str = &conn.listener;
    let error_unavailable_endpoints = version == 0;
    let error_unavailable_listeners = version >= 6;

    let all_topics = asks_all_topics(&req, version);
    let requested = req.topics.as_deref().unwrap_or(&[]);

    let mut topics_out: Vec<MetadataResponseTopic> = Vec::new();

    // Topic ids (v10+): unknown ids are reported as UNKNOWN_TOPIC_ID.
    let ids: Vec<Uuid> = requested
        .iter()
        .map(|t| t.topic_id)
        .filter(|id| !id.is_nil())
        .collect();
    let use_topic_ids = !ids.is_empty();

    let names: Vec<String> = if all_topics {
        snap.topics.keys().cloned().collect()
    } else if use_topic_ids {
        let mut names = Vec::new();
        for id in &ids {
            match snap.topic_name(id) {
                Some(n) => names.push(n.to_string()),
                None => {
                    let mut t = MetadataResponseTopic::default();
                    t.error_code = ResponseError::UnknownTopicId.code();
                    t.name = None;
                    t.topic_id = *id;
                    t.topic_authorized_operations = OPERATIONS_OMITTED;
                    topics_out.push(t);
                }
            }
        }
        names
    } else {
        let mut seen = BTreeSet::new();
        requested
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .filter(|n| seen.insert(n.clone()))
            .collect()
    };

    let allow_auto_create =
        ctx.config.auto_create_topics_enable && req.allow_auto_topic_creation && !all_topics;

    // Only topics the principal may DESCRIBE are looked up: the others are left out of an
    // all-topics answer and refused by name, so their existence is never disclosed.
    let describable = enforce::filter(
        ctx,
        conn,
        Operation::Describe,
        ResourceType::Topic,
        names.iter().map(String::as_str),
    );
    let (mut authorized, refused_describe): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| describable.contains(n));
    // Auto-creation needs CREATE on the cluster or on the topic.
    let mut refused_create: Vec<&String> = Vec::new();
    if allow_auto_create && enforce::enabled(ctx) {
        let missing: Vec<&String> = authorized
            .iter()
            .copied()
            .filter(|n| !snap.topics.contains_key(n.as_str()))
            .collect();
        if !missing.is_empty() && !enforce::cluster(ctx, conn, Operation::Create) {
            let creatable = enforce::filter(
                ctx,
                conn,
                Operation::Create,
                ResourceType::Topic,
                missing.iter().map(|n| n.as_str()),
            );
            refused_create = missing
                .into_iter()
                .filter(|n| !creatable.contains(n))
                .collect();
            authorized.retain(|n| !refused_create.contains(n));
        }
    }
    let first_described = topics_out.len();

    for name in authorized {
        if let Some(t) = topic_metadata(
            snap,
            name,
            listener,
            error_unavailable_endpoints,
            error_unavailable_listeners,
        ) {
            topics_out.push(t);
            continue;
        }
        let error = match validate_topic_name(name) {
            Err(_) => ResponseError::InvalidTopicException,
            Ok(()) if allow_auto_create => auto_create(ctx, snap, name).await,
            Ok(()) => ResponseError::UnknownTopicOrPartition,
        };
        let mut t = MetadataResponseTopic::default();
        t.error_code = error.code();
        t.name = Some(TopicName(name.clone().into()));
        t.topic_id = snap.topic_id(name).unwrap_or_default();
        t.is_internal = is_internal(name);
        t.topic_authorized_operations = OPERATIONS_OMITTED;
        topics_out.push(t);
    }

    if version >= 8 && req.include_topic_authorized_operations {
        for t in &mut topics_out[first_described..] {
            if let Some(name) = &t.name {
                t.topic_authorized_operations =
                    enforce::operations(ctx, conn, ResourceType::Topic, name);
            }
        }
    }
    let refused = denied_error(ResourceType::Topic).code();
    for name in refused_create {
        let mut t = MetadataResponseTopic::default();
        t.error_code = refused;
        t.name = Some(TopicName(name.clone().into()));
        t.is_internal = is_internal(name);
        t.topic_authorized_operations = OPERATIONS_OMITTED;
        topics_out.push(t);
    }
    if !all_topics {
        for name in refused_describe {
            let mut t = MetadataResponseTopic::default();
            t.error_code = refused;
            // Asked by id: the id is echoed (ids are not secret), the name is not.
            if use_topic_ids {
                t.topic_id = snap.topic_id(name).unwrap_or_default();
            } else {
                t.name = Some(TopicName(name.clone().into()));
            }
            t.topic_authorized_operations = OPERATIONS_OMITTED;
            topics_out.push(t);
        }
    }

    let mut resp = MetadataResponse::default();
    resp.brokers = snap
        .brokers
        .values()
        .filter_map(|b| {
            let ep = b.endpoints.get(listener)?;
            let mut rb = MetadataResponseBroker::default();
            rb.node_id = KBrokerId(b.id);
            rb.host = ep.host.clone().into();
            rb.port = ep.port;
            rb.rack = b.rack.clone().map(Into::into);
            Some(rb)
        })
        .collect();
    resp.cluster_id = ctx.cluster_id().map(Into::into);
    resp.controller_id = KBrokerId(snap.controller_id.unwrap_or(-1));
    resp.topics = topics_out;
    resp.cluster_authorized_operations =
        if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
            enforce::cluster_operations(ctx, conn)
        } else {
            OPERATIONS_OMITTED
        };
    Ok(resp)
}

/// Kafka `ZkMetadataCache.getTopicMetadata` for one topic, `None` if unknown.
fn topic_metadata(
    snap: &MetadataSnapshot,
    name: &str,
    listener: &str,
    error_unavailable_endpoints: bool,
    error_unavailable_listeners: bool,
) -> Option<MetadataResponseTopic> {
    let topic = snap.topics.get(name)?;
    let alive_on_listener = |b: &i32| snap.endpoint(*b, listener).is_some();
    let filter = |v: &[i32]| -> Vec<KBrokerId> {
        v.iter()
            .filter(|b| !error_unavailable_endpoints || alive_on_listener(b))
            .map(|b| KBrokerId(*b))
            .collect()
    };
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, ps)| {
            let replicas = filter(&ps.replicas);
            let isr = filter(&ps.isr);
            let mut p = MetadataResponsePartition::default();
            p.partition_index = index;
            p.leader_epoch = ps.leader_epoch;
            p.offline_replicas = ps.offline_replicas.iter().map(|b| KBrokerId(*b)).collect();
            let error = match snap.endpoint(ps.leader, listener) {
                None => {
                    p.leader_id = KBrokerId(-1);
                    if snap.is_alive(ps.leader) && error_unavailable_listeners {
                        ResponseError::ListenerNotFound.code()
                    } else {
                        ResponseError::LeaderNotAvailable.code()
                    }
                }
                Some(_) => {
                    p.leader_id = KBrokerId(ps.leader);
                    if replicas.len() < ps.replicas.len() || isr.len() < ps.isr.len() {
                        ResponseError::ReplicaNotAvailable.code()
                    } else {
                        0
                    }
                }
            };
            p.error_code = error;
            p.replica_nodes = replicas;
            p.isr_nodes = isr;
            p
        })
        .collect();
    let mut t = MetadataResponseTopic::default();
    t.error_code = 0;
    t.name = Some(TopicName(name.to_string().into()));
    t.topic_id = topic.topic_id;
    t.is_internal = is_internal(name);
    t.partitions = partitions;
    t.topic_authorized_operations = OPERATIONS_OMITTED;
    Some(t)
}

/// Auto-creation (Kafka `AutoTopicCreationManager`, ZooKeeper path): writes the
/// topic's assignment to ZooKeeper and answers LEADER_NOT_AVAILABLE until the
/// controller has elected leaders and sent UpdateMetadata.
async fn auto_create(
    ctx: &Arc<BrokerContext>,
    _snap: &MetadataSnapshot,
    name: &str,
) -> ResponseError {
    let code = crate::handlers::create_topics::auto_create_topic(ctx, name).await;
    ResponseError::try_from_code(code).unwrap_or(ResponseError::LeaderNotAvailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_rules() {
        assert!(validate_topic_name("my-topic_1.x").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn operation_bitfields() {
        assert_eq!(TOPIC_ALL_OPERATIONS, 3576);
        assert_eq!(CLUSTER_ALL_OPERATIONS, 8096);
    }
}
