//! FindCoordinator (API 10): the broker leading the internal-topic partition that owns a group
//! id (`__consumer_offsets`) or transactional id (`__transaction_state`). A missing internal
//! topic is created on the first lookup (through the Metadata auto-create path) and the
//! answer is COORDINATOR_NOT_AVAILABLE until a leader exists, as Kafka's
//! `KafkaApis.getCoordinator` does. v0-3 carry one key; v4+ a batch of keys.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::partition_for;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const NONE: i16 = 0;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const INVALID_REQUEST: i16 = 42;

/// Key types (`CoordinatorType`).
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// Kafka's `Errors.message()` for the codes this API returns.
fn message(code: i16) -> &'static str {
    match code {
        NONE => "NONE",
        COORDINATOR_NOT_AVAILABLE => "The coordinator is not available.",
        INVALID_REQUEST => {
            "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details."
        }
        c if c == denied_error(ResourceType::Group).code() => {
            enforce::denied_message(ResourceType::Group)
        }
        c if c == denied_error(ResourceType::TransactionalId).code() => {
            enforce::denied_message(ResourceType::TransactionalId)
        }
        _ => "Unknown error.",
    }
}

/// (node id, host, port, error code) for one key.
async fn lookup(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    key_type: i8,
    key: &str,
) -> (i32, String, i32, i16) {
    let not_available = (-1, String::new(), -1, COORDINATOR_NOT_AVAILABLE);
    // DESCRIBE on the key comes first (Kafka `getCoordinator`).
    let refused = |rt| (-1, String::new(), -1, denied_error(rt).code());
    let topic = match key_type {
        KEY_GROUP => {
            if !enforce::allow(ctx, conn, Operation::Describe, ResourceType::Group, key) {
                return refused(ResourceType::Group);
            }
            "__consumer_offsets"
        }
        KEY_TRANSACTION => {
            if !enforce::allow(
                ctx,
                conn,
                Operation::Describe,
                ResourceType::TransactionalId,
                key,
            ) {
                return refused(ResourceType::TransactionalId);
            }
            "__transaction_state"
        }
        _ => return (-1, String::new(), -1, INVALID_REQUEST),
    };
    let snap = ctx.metadata_cache.snapshot();
    let Some(tm) = snap.topics.get(topic) else {
        crate::handlers::create_topics::auto_create_topic(ctx, topic).await;
        return not_available;
    };
    // The partition count of the existing topic decides, as Kafka does after creation.
    let n = tm.partitions.len() as i32;
    if n == 0 {
        return not_available;
    }
    let tp = TopicPartition {
        topic: topic.to_string(),
        partition: partition_for(key, n),
    };
    let Some(ps) = snap.partition(&tp) else {
        return not_available;
    };
    match snap.endpoint(ps.leader, &conn.listener) {
        Some(ep) => (ps.leader, ep.host.clone(), ep.port, NONE),
        None => not_available,
    }
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse> {
    let version = header.request_api_version;
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        for key in &req.coordinator_keys {
            let (node, host, port, code) = lookup(ctx, conn, req.key_type, key).await;
            let mut c = Coordinator::default();
            c.key = key.clone();
            c.node_id = node.into();
            c.host = StrBytes::from_string(host);
            c.port = port;
            c.error_code = code;
            c.error_message = Some(StrBytes::from_static_str(message(code)));
            resp.coordinators.push(c);
        }
    } else {
        let key_type = if version == 0 {
            KEY_GROUP
        } else {
            req.key_type
        };
        let (node, host, port, code) = lookup(ctx, conn, key_type, &req.key).await;
        resp.node_id = node.into();
        resp.host = StrBytes::from_string(host);
        resp.port = port;
        resp.error_code = code;
        resp.error_message = Some(StrBytes::from_static_str(message(code)));
    }
    Ok(resp)
}
