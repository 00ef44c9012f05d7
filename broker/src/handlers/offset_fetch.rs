//! OffsetFetch (API 9, v0-9): committed offsets of a group (v8+: of several groups).
//! Unknown partitions answer offset -1; a null topic list (v2+) means every committed offset.
//! v7+ `require_stable`: a partition whose commit is still being replicated answers
//! UNSTABLE_OFFSET_COMMIT (there are no pending transactional commits without transactions).
//! v0 reads the offsets OffsetCommit v0 wrote to ZooKeeper, as a 3.9 ZooKeeper-mode broker does
//! (`handleOffsetFetchRequestFromZookeeper`): unknown partitions and missing znodes answer
//! UNKNOWN_TOPIC_OR_PARTITION with offset -1.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::{codes, coordinator_error, CommittedOffset};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};
use samsa_common::zk::znodes::ConsumerOffsetZNode;

type Rows = Vec<((String, i32), Option<CommittedOffset>, i16)>;

fn fetch(
    ctx: &Arc<BrokerContext>,
    gid: &str,
    wanted: Option<Vec<(String, i32)>>,
    require_stable: bool,
) -> (i16, Rows) {
    if let Some(code) = coordinator_error(ctx, gid) {
        let rows = wanted
            .unwrap_or_default()
            .into_iter()
            .map(|k| (k, None, codes::NONE))
            .collect();
        return (code, rows);
    }
    (
        codes::NONE,
        ctx.groups
            .fetch_offsets(gid, wanted.as_deref(), require_stable),
    )
}

/// [`fetch`] behind Kafka's checks: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED
/// and nothing else), then DESCRIBE on each topic: named topics the principal may not describe
/// answer TOPIC_AUTHORIZATION_FAILED, and an all-topics fetch leaves them out.
fn fetch_authorized(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    gid: &str,
    wanted: Option<Vec<(String, i32)>>,
    require_stable: bool,
) -> (i16, Rows) {
    if !enforce::allow(ctx, conn, Operation::Describe, ResourceType::Group, gid) {
        return (denied_error(ResourceType::Group).code(), Vec::new());
    }
    if !enforce::enabled(ctx) {
        return fetch(ctx, gid, wanted, require_stable);
    }
    let refused = denied_error(ResourceType::Topic).code();
    match wanted {
        None => {
            let (code, mut rows) = fetch(ctx, gid, None, require_stable);
            if code == codes::NONE {
                let names: Vec<String> = rows.iter().map(|((t, _), _, _)| t.clone()).collect();
                let allowed = enforce::filter(
                    ctx,
                    conn,
                    Operation::Describe,
                    ResourceType::Topic,
                    names.iter().map(String::as_str),
                );
                rows.retain(|((t, _), _, _)| allowed.contains(t));
            }
            (code, rows)
        }
        Some(wanted) => {
            let allowed = enforce::filter(
                ctx,
                conn,
                Operation::Describe,
                ResourceType::Topic,
                wanted.iter().map(|(t, _)| t.as_str()),
            );
            let (ok, denied): (Vec<_>, Vec<_>) = wanted
                .iter()
                .cloned()
                .partition(|(t, _)| allowed.contains(t));
            let (code, mut rows) = fetch(ctx, gid, Some(ok), require_stable);
            if code == codes::NONE {
                rows.extend(denied.into_iter().map(|k| (k, None, refused)));
            }
            (code, rows)
        }
    }
}

type ByTopic = BTreeMap<String, Vec<(i32, Option<CommittedOffset>, i16)>>;

fn by_topic(rows: Rows) -> ByTopic {
    let mut m: ByTopic = BTreeMap::new();
    for ((t, p), o, e) in rows {
        m.entry(t).or_default().push((p, o, e));
    }
    m
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: OffsetFetchRequest,
) -> Result<OffsetFetchResponse> {
    let v = header.request_api_version;
    let mut resp = OffsetFetchResponse::default();
    if v >= 8 {
        for g in &req.groups {
            let wanted = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .flat_map(|t| {
                        t.partition_indexes
                            .iter()
                            .map(|p| (t.name.0.to_string(), *p))
                    })
                    .collect()
            });
            let (code, rows) =
                fetch_authorized(ctx, conn, &g.group_id.0, wanted, req.require_stable);
            let mut rg = OffsetFetchResponseGroup::default();
            rg.group_id = g.group_id.clone();
            rg.error_code = code;
            for (t, ps) in by_topic(rows) {
                let mut rt = OffsetFetchResponseTopics::default();
                rt.name = TopicName(StrBytes::from_string(t));
                for (p, o, e) in ps {
                    let mut rp = OffsetFetchResponsePartitions::default();
                    rp.partition_index = p;
                    rp.error_code = e;
                    rp.committed_offset = o.as_ref().map(|o| o.offset).unwrap_or(-1);
                    rp.committed_leader_epoch = o.as_ref().map(|o| o.leader_epoch).unwrap_or(-1);
                    rp.metadata = Some(StrBytes::from_string(
                        o.map(|o| o.metadata).unwrap_or_default(),
                    ));
                    rt.partitions.push(rp);
                }
                rg.topics.push(rt);
            }
            resp.groups.push(rg);
        }
        return Ok(resp);
    }
    if v == 0 {
        return Ok(fetch_from_zk(ctx, conn, &req).await);
    }
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| (t.name.0.to_string(), *p))
            })
            .collect()
    });
    let (code, rows) = fetch_authorized(
        ctx,
        conn,
        &req.group_id.0,
        wanted,
        v >= 7 && req.require_stable,
    );
    for (t, ps) in by_topic(rows) {
        let mut rt = OffsetFetchResponseTopic::default();
        rt.name = TopicName(StrBytes::from_string(t));
        for (p, o, e) in ps {
            let mut rp = OffsetFetchResponsePartition::default();
            rp.partition_index = p;
            rp.committed_offset = o.as_ref().map(|o| o.offset).unwrap_or(-1);
            rp.committed_leader_epoch = o.as_ref().map(|o| o.leader_epoch).unwrap_or(-1);
            rp.metadata = Some(StrBytes::from_string(
                o.map(|o| o.metadata).unwrap_or_default(),
            ));
            // v0-1 carry the group error per partition.
            rp.error_code = if v <= 1 && code != codes::NONE {
                code
            } else {
                e
            };
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    if v >= 2 {
        resp.error_code = code;
    }
    Ok(resp)
}

async fn fetch_from_zk(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    req: &OffsetFetchRequest,
) -> OffsetFetchResponse {
    let snap = ctx.metadata_cache.snapshot();
    let zk = ctx.zk();
    let mut resp = OffsetFetchResponse::default();
    // Kafka's v0 error response: every partition with the group's refusal.
    let group_denied = !enforce::allow(
        ctx,
        conn,
        Operation::Describe,
        ResourceType::Group,
        &req.group_id.0,
    );
    let allowed = enforce::filter(
        ctx,
        conn,
        Operation::Describe,
        ResourceType::Topic,
        req.topics.iter().flatten().map(|t| t.name.0.as_str()),
    );
    for t in req.topics.iter().flatten() {
        let refused = if group_denied {
            Some(denied_error(ResourceType::Group).code())
        } else if !allowed.contains(t.name.0.as_str()) {
            Some(denied_error(ResourceType::Topic).code())
        } else {
            None
        };
        let mut rt = OffsetFetchResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partition_indexes {
            let mut rp = OffsetFetchResponsePartition::default();
            rp.partition_index = *p;
            rp.committed_offset = -1;
            rp.committed_leader_epoch = -1;
            rp.metadata = Some(StrBytes::from_static_str(""));
            rp.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION;
            if let Some(code) = refused {
                rp.error_code = code;
                rt.partitions.push(rp);
                continue;
            }
            let known = snap
                .topics
                .get(t.name.0.as_str())
                .is_some_and(|tm| tm.partitions.contains_key(p));
            if let (true, Some(zk)) = (known, zk.as_ref()) {
                let path = ConsumerOffsetZNode::path(&req.group_id.0, &t.name.0, *p);
                match zk.get(&path).await {
                    Ok(Some((data, _))) => match ConsumerOffsetZNode::decode(&data) {
                        Some(o) => {
                            rp.committed_offset = o;
                            rp.error_code = codes::NONE;
                        }
                        None => rp.error_code = codes::UNKNOWN_SERVER_ERROR,
                    },
                    Ok(None) => {}
                    Err(_) => rp.error_code = codes::UNKNOWN_SERVER_ERROR,
                }
            }
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}
