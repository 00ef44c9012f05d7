//! CreatePartitions (v0–3), ZooKeeper mode (Kafka's `KafkaApis.handleCreatePartitionsRequest` +
//! `ZkAdminManager.createPartitions` + `AdminZkClient.createNewPartitionsAssignment`).
//!
//! Only the active controller accepts it (NOT_CONTROLLER elsewhere). Duplicate topics →
//! INVALID_REQUEST; topic queued for deletion → INVALID_TOPIC_EXCEPTION; reassignment in
//! progress → REASSIGNMENT_IN_PROGRESS; unknown → UNKNOWN_TOPIC_OR_PARTITION; not an increase
//! → INVALID_PARTITIONS; bad manual assignment → INVALID_REPLICA_ASSIGNMENT /
//! BROKER_NOT_AVAILABLE. Otherwise the topic znode is rewritten with the new partitions (the
//! controller creates them) and the response waits up to `timeout_ms` for their leaders.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::BrokerId;
use samsa_common::zk::admin::{self, code};
use samsa_common::zk::session::ZkSession;
use samsa_common::zk::znodes::DeleteTopicsTopicZNode;
use samsa_controller::assignment::{
    broker_metadatas, new_partitions_assignment, BrokerMetadata, RackAwareMode,
};
use tracing::info;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::handlers::create_topics::wait_for_metadata;
use crate::handlers::create_topics::THROTTLING_QUOTA_EXCEEDED;
use crate::handlers::describe_configs::api_message;
use crate::metadata_cache::{MetadataSnapshot, NO_LEADER};
use crate::quota::mutation::MutationQuota;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

type Outcome = (i16, Option<String>);

fn err(c: i16, m: impl Into<String>) -> Outcome {
    (c, Some(m.into()))
}

/// One topic of the request, checked and (unless `validate_only`) written. Returns the outcome
/// and the new partition ids to wait for.
async fn add_to_topic(
    zk: &ZkSession,
    brokers: &[BrokerMetadata],
    topic: &str,
    count: i32,
    manual: Option<Vec<Vec<BrokerId>>>,
    validate_only: bool,
    quota: &mut MutationQuota<'_>,
) -> (Outcome, Vec<i32>) {
    let existing = match admin::existing_assignment_for_add(zk, topic).await {
        Ok(z) => z,
        Err(e) => return ((e.api_code().unwrap_or(-1), Some(api_message(&e))), vec![]),
    };
    let old = existing.partitions.len() as i32;
    if count < old {
        return (
            err(
                code::INVALID_PARTITIONS,
                format!("Topic currently has {old} partitions, which is higher than the requested {count}."),
            ),
            vec![],
        );
    }
    if count == old {
        return (
            err(
                code::INVALID_PARTITIONS,
                format!("Topic already has {old} partitions."),
            ),
            vec![],
        );
    }
    if let Err(e) = admin::check_partition_count_fits(topic, count) {
        return ((e.api_code().unwrap_or(-1), Some(api_message(&e))), vec![]);
    }
    let increment = count - old;
    let new_assignment: BTreeMap<i32, Vec<BrokerId>> = match manual {
        Some(list) => {
            let ids: BTreeSet<BrokerId> = brokers.iter().map(|b| b.id).collect();
            let unknown: BTreeSet<BrokerId> = list
                .iter()
                .flatten()
                .filter(|b| !ids.contains(b))
                .copied()
                .collect();
            if !unknown.is_empty() {
                let u: Vec<String> = unknown.iter().map(i32::to_string).collect();
                return (
                    err(
                        code::INVALID_REPLICA_ASSIGNMENT,
                        format!("Unknown broker(s) in replica assignment: {}.", u.join(", ")),
                    ),
                    vec![],
                );
            }
            if list.len() as i32 != increment {
                return (
                    err(
                        code::INVALID_REPLICA_ASSIGNMENT,
                        format!(
                            "Increasing the number of partitions by {increment} but {} assignments provided.",
                            list.len()
                        ),
                    ),
                    vec![],
                );
            }
            let proposed: BTreeMap<i32, Vec<BrokerId>> = list
                .into_iter()
                .enumerate()
                .map(|(i, r)| (old + i as i32, r))
                .collect();
            let rf = existing.partitions.get(&0).map_or(0, Vec::len);
            if let Err(e) = admin::validate_new_partitions_assignment(&proposed, rf, &ids) {
                return ((e.api_code().unwrap_or(-1), Some(api_message(&e))), vec![]);
            }
            proposed
        }
        None => match new_partitions_assignment(brokers, &existing.partitions, count) {
            Ok(a) => a,
            Err(e) => return (err(e.code(), e.to_string()), vec![]),
        },
    };
    let new_ids: Vec<i32> = new_assignment.keys().copied().collect();
    let mut sized = existing.clone();
    sized.partitions.extend(new_assignment.clone());
    if let Err(e) = admin::check_topic_znode_fits(topic, &sized) {
        return ((e.api_code().unwrap_or(-1), Some(api_message(&e))), vec![]);
    }
    if validate_only {
        return ((code::NONE, None), new_ids);
    }
    if quota.record(new_ids.len() as f64).is_err() {
        return ((THROTTLING_QUOTA_EXCEEDED, None), vec![]);
    }
    match admin::add_partitions(zk, topic, &existing, &new_assignment).await {
        Ok(_) => {
            info!(
                topic,
                from = old,
                to = count,
                "added partitions in ZooKeeper"
            );
            ((code::NONE, None), new_ids)
        }
        Err(e) => ((e.api_code().unwrap_or(-1), Some(api_message(&e))), vec![]),
    }
}

fn leaders_present(s: &MetadataSnapshot, topic: &str, ps: &[i32]) -> bool {
    s.topics.get(topic).is_some_and(|t| {
        ps.iter()
            .all(|p| t.partitions.get(p).is_some_and(|st| st.leader != NO_LEADER))
    })
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse> {
    let mut resp = CreatePartitionsResponse::default();
    // Kafka's `newQuotaFor(request, strictSinceVersion = 3)`.
    let mut quota = MutationQuota::new(
        &ctx.quotas,
        crate::dispatch::user_of(conn),
        crate::dispatch::client_of(header),
        header.request_api_version,
        3,
    );
    let result = |name: &str, (c, m): Outcome| {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = TopicName(StrBytes::from_string(name.to_string()));
        r.error_code = c;
        r.error_message = m.map(StrBytes::from_string);
        r
    };
    let names: Vec<String> = req
        .topics
        .iter()
        .map(|t| t.name.0.as_str().to_string())
        .collect();
    if !ctx.controller.is_active() {
        for n in &names {
            resp.results.push(result(n, (code::NOT_CONTROLLER, None)));
        }
        return Ok(resp);
    }
    let Some(zk) = ctx.zk() else {
        for n in &names {
            resp.results
                .push(result(n, err(-1, "ZooKeeper session not available")));
        }
        return Ok(resp);
    };

    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in &names {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    // All registered brokers, rack-enforced, sorted (AdminZkClient.getBrokerMetadatas).
    let registered: Vec<BrokerMetadata> = zk
        .get_all_brokers()
        .await
        .map(|v| {
            v.iter()
                .map(|(b, _)| BrokerMetadata::new(b.id, b.rack.as_deref()))
                .collect()
        })
        .unwrap_or_default();
    let brokers = broker_metadatas(&registered, RackAwareMode::Enforced);

    let mut outcomes: Vec<(String, Outcome, Vec<i32>)> = Vec::new();
    let mut dup_done = BTreeSet::new();
    for t in &req.topics {
        let name = t.name.0.as_str().to_string();
        if counts.get(name.as_str()).copied().unwrap_or(0) > 1 {
            if dup_done.insert(name.clone()) {
                outcomes.push((
                    name,
                    err(code::INVALID_REQUEST, "Duplicate topic in request."),
                    vec![],
                ));
            }
            continue;
        }
        // ALTER on the topic, before the deletion check (Kafka's order).
        if !enforce::allow(ctx, conn, Operation::Alter, ResourceType::Topic, &name) {
            outcomes.push((
                name,
                err(
                    denied_error(ResourceType::Topic).code(),
                    "The topic authorization is failed.",
                ),
                vec![],
            ));
            continue;
        }
        let queued = zk
            .exists(&DeleteTopicsTopicZNode::path(&name))
            .await
            .ok()
            .flatten()
            .is_some();
        if queued {
            outcomes.push((
                name,
                err(
                    code::INVALID_TOPIC_EXCEPTION,
                    "The topic is queued for deletion.",
                ),
                vec![],
            ));
            continue;
        }
        let brokers = match &brokers {
            Ok(b) => b.clone(),
            Err(e) => {
                outcomes.push((name, err(e.code(), e.to_string()), vec![]));
                continue;
            }
        };
        let manual = t.assignments.as_ref().map(|a| {
            a.iter()
                .map(|x| x.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        });
        let (o, ids) = add_to_topic(
            &zk,
            &brokers,
            &name,
            t.count,
            manual,
            req.validate_only,
            &mut quota,
        )
        .await;
        outcomes.push((name, o, ids));
    }

    let pending: Vec<(String, Vec<i32>)> = outcomes
        .iter()
        .filter(|(_, o, ids)| o.0 == code::NONE && !ids.is_empty())
        .map(|(n, _, ids)| (n.clone(), ids.clone()))
        .collect();
    let mut timed_out = BTreeSet::new();
    if !req.validate_only && !pending.is_empty() {
        if req.timeout_ms <= 0 {
            timed_out.extend(pending.iter().map(|(n, _)| n.clone()));
        } else {
            let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
            wait_for_metadata(ctx, timeout, |s| {
                pending.iter().all(|(n, ps)| leaders_present(s, n, ps))
            })
            .await;
            let s = ctx.metadata_cache.snapshot();
            for (n, ps) in &pending {
                if !leaders_present(&s, n, ps) {
                    timed_out.insert(n.clone());
                }
            }
        }
    }
    for (n, o, _) in outcomes {
        let o = if timed_out.contains(&n) {
            (code::REQUEST_TIMED_OUT, None)
        } else {
            o
        };
        resp.results.push(result(&n, o));
    }
    resp.throttle_time_ms = quota.finish(conn);
    Ok(resp)
}
