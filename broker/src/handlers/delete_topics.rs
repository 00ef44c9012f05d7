//! DeleteTopics (v0–6), ZooKeeper mode (Kafka's `KafkaApis.handleDeleteTopicsRequest` +
//! `ZkAdminManager.deleteTopics` + `DelayedDeleteTopics`).
//!
//! Only the active controller accepts it (NOT_CONTROLLER elsewhere). With
//! `delete.topic.enable=false` every topic gets TOPIC_DELETION_DISABLED (INVALID_REQUEST below
//! v3). v6+ may name topics by id (unknown id → UNKNOWN_TOPIC_ID). Topics absent from the
//! metadata cache → UNKNOWN_TOPIC_OR_PARTITION. Others are marked with
//! `/admin/delete_topics/<t>` (already marked is fine) and the response waits up to
//! `timeout_ms` until they are gone from the metadata cache (REQUEST_TIMED_OUT otherwise).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::zk::admin::{self, code};
use tracing::{info, warn};
use uuid::Uuid;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::handlers::create_topics::{wait_for_metadata, THROTTLING_QUOTA_EXCEEDED};
use crate::handlers::describe_configs::api_message;
use crate::quota::mutation::MutationQuota;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse> {
    let version = header.request_api_version;
    // (name, id) as requested.
    let requested: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.as_str().to_string()),
                    t.topic_id,
                )
            })
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.as_str().to_string()), Uuid::nil()))
            .collect()
    };
    let mut resp = DeleteTopicsResponse::default();
    let mk = |name: Option<&str>, id: Uuid, code_: i16, msg: Option<String>| {
        let mut r = DeletableTopicResult::default();
        r.name = name.map(|n| TopicName(StrBytes::from_string(n.to_string())));
        r.topic_id = id;
        r.error_code = code_;
        if version >= 5 {
            r.error_message = msg.map(StrBytes::from_string);
        }
        r
    };

    if !ctx.controller.is_active() || !ctx.config.delete_topic_enable {
        let c = if !ctx.controller.is_active() {
            code::NOT_CONTROLLER
        } else if version < 3 {
            code::INVALID_REQUEST
        } else {
            code::TOPIC_DELETION_DISABLED
        };
        for (name, id) in &requested {
            resp.responses.push(mk(name.as_deref(), *id, c, None));
        }
        return Ok(resp);
    }

    let snap = ctx.metadata_cache.snapshot();
    // Resolve ids, then classify.
    let mut rows: Vec<(Option<String>, Uuid, i16, Option<String>)> = Vec::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();
    for (name, id) in requested {
        let name = if id.is_nil() {
            name
        } else {
            snap.topic_name(&id).map(str::to_string)
        };
        let refused = denied_error(ResourceType::Topic).code();
        let may = |op, n: &str| enforce::allow(ctx, conn, op, ResourceType::Topic, n);
        match name {
            None if !id.is_nil() => rows.push((None, id, code::UNKNOWN_TOPIC_ID, None)),
            None => rows.push((None, id, code::INVALID_REQUEST, None)),
            // Asked by id without DESCRIBE: refused, and the name is not disclosed.
            Some(n) if !id.is_nil() && !may(Operation::Describe, &n) => {
                rows.push((None, id, refused, None))
            }
            // DELETE is checked before existence, so unknown names are not disclosed.
            Some(n) if !may(Operation::Delete, &n) => rows.push((Some(n), id, refused, None)),
            Some(n) if !snap.contains_topic(&n) => {
                rows.push((Some(n), id, code::UNKNOWN_TOPIC_OR_PARTITION, None))
            }
            Some(n) => {
                to_delete.insert(n.clone());
                rows.push((Some(n), id, code::NONE, None));
            }
        }
    }

    // Mark for deletion (ZkAdminManager.deleteTopics), each topic's partitions first taken
    // from the controller mutation quota (strict from v5).
    let mut quota = MutationQuota::new(
        &ctx.quotas,
        crate::dispatch::user_of(conn),
        crate::dispatch::client_of(header),
        version,
        5,
    );
    let mut failed: std::collections::HashMap<String, (i16, Option<String>)> = Default::default();
    match ctx.zk() {
        Some(zk) => {
            for t in &to_delete {
                let partitions = snap
                    .topics
                    .get(t.as_str())
                    .map_or(0, |m| m.partitions.len());
                if quota.record(partitions as f64).is_err() {
                    failed.insert(t.clone(), (THROTTLING_QUOTA_EXCEEDED, None));
                    continue;
                }
                match admin::mark_topic_for_deletion(&zk, t).await {
                    Ok(new) => {
                        if new {
                            info!(topic = %t, "marked topic for deletion");
                        }
                    }
                    Err(e) => {
                        warn!(topic = %t, error = %e, "error processing delete topic request");
                        failed.insert(
                            t.clone(),
                            (e.api_code().unwrap_or(-1), Some(api_message(&e))),
                        );
                    }
                }
            }
        }
        None => {
            for t in &to_delete {
                failed.insert(
                    t.clone(),
                    (-1, Some("ZooKeeper session not available".into())),
                );
            }
        }
    }
    let pending: Vec<String> = to_delete
        .iter()
        .filter(|t| !failed.contains_key(*t))
        .cloned()
        .collect();

    let mut timed_out: BTreeSet<String> = BTreeSet::new();
    if !pending.is_empty() {
        if req.timeout_ms <= 0 {
            timed_out.extend(pending.iter().cloned());
        } else {
            let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
            wait_for_metadata(ctx, timeout, |s| {
                pending.iter().all(|t| !s.contains_topic(t))
            })
            .await;
            let s = ctx.metadata_cache.snapshot();
            timed_out.extend(pending.iter().filter(|t| s.contains_topic(t)).cloned());
        }
    }

    for (name, id, mut c, mut msg) in rows {
        if let Some(n) = &name {
            if c == code::NONE {
                if let Some((fc, fm)) = failed.get(n) {
                    c = *fc;
                    msg = fm.clone();
                } else if timed_out.contains(n) {
                    c = code::REQUEST_TIMED_OUT;
                }
            }
        }
        // Kafka echoes the requested id (zero for name-based entries).
        resp.responses.push(mk(name.as_deref(), id, c, msg));
    }
    resp.throttle_time_ms = quota.finish(conn);
    Ok(resp)
}
