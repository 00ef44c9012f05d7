//! CreateTopics (v0–7), ZooKeeper mode (Kafka's `KafkaApis.handleCreateTopicsRequest` +
//! `ZkAdminManager.createTopics` + `DelayedCreatePartitions`).
//!
//! Only the active controller accepts it (NOT_CONTROLLER elsewhere). Per topic: already in the
//! metadata cache → TOPIC_ALREADY_EXISTS; null config values → INVALID_CONFIG; both counts and
//! explicit assignments → INVALID_REQUEST; assignment from `samsa_controller::assignment` over
//! the live brokers (or the explicit one); `AdminZkClient.validateTopicCreate` checks; config
//! validation; then (unless `validate_only`) `/config/topics/<t>` and `/brokers/topics/<t>` are
//! written. The response waits (up to `timeout_ms`) until every new partition has a leader in
//! the metadata cache; topics still leaderless then get REQUEST_TIMED_OUT.
//!
//! Also home of [`auto_create_topic`], the Metadata auto-creation path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::BrokerId;
use samsa_common::zk::admin::{self, code};
use samsa_controller::assignment::{assign_replicas_to_brokers, BrokerMetadata};
use tracing::info;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::handlers::alter_configs::validate_topic_props;
use crate::handlers::describe_configs::{api_message, topic_entries};
use crate::metadata_cache::{MetadataSnapshot, NO_LEADER};
use crate::quota::mutation::MutationQuota;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// `(error_code, message)` of one topic.
pub type TopicOutcome = (i16, Option<String>);

/// Refused by a `controller_mutation_rate` quota (Kafka sends no message: it is the default).
pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;

/// What was decided for one topic before the wait.
struct Planned {
    outcome: TopicOutcome,
    /// Partitions written (for the leader wait); empty on error.
    partitions: Vec<i32>,
    assignment: BTreeMap<i32, Vec<BrokerId>>,
    configs: BTreeMap<String, String>,
}

fn err(code: i16, msg: impl Into<String>) -> TopicOutcome {
    (code, Some(msg.into()))
}

fn from_common(e: &samsa_common::error::Error) -> TopicOutcome {
    (e.api_code().unwrap_or(-1), Some(api_message(e)))
}

/// Live brokers from the metadata cache, in id order, with racks (Kafka's
/// `metadataCache.getAliveBrokers()`).
pub fn alive_broker_metadatas(snap: &MetadataSnapshot) -> Vec<BrokerMetadata> {
    snap.brokers
        .values()
        .map(|b| BrokerMetadata::new(b.id, b.rack.as_deref()))
        .collect()
}

/// The create-time checks and ZooKeeper writes of one topic (`ZkAdminManager.createTopics`).
#[allow(clippy::too_many_arguments)]
async fn plan_topic(
    ctx: &Arc<BrokerContext>,
    snap: &MetadataSnapshot,
    name: &str,
    num_partitions: i32,
    replication_factor: i16,
    explicit: &[(i32, Vec<BrokerId>)],
    configs: &[(String, Option<String>)],
    validate_only: bool,
    quota: &mut MutationQuota<'_>,
) -> Planned {
    let mut planned = Planned {
        outcome: (code::NONE, None),
        partitions: Vec::new(),
        assignment: BTreeMap::new(),
        configs: BTreeMap::new(),
    };
    let fail = |mut p: Planned, o: TopicOutcome| {
        p.outcome = o;
        p
    };
    if snap.contains_topic(name) {
        return fail(
            planned,
            err(
                code::TOPIC_ALREADY_EXISTS,
                format!("Topic '{name}' already exists."),
            ),
        );
    }
    let nulls: Vec<&str> = configs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if !nulls.is_empty() {
        return fail(
            planned,
            err(
                code::INVALID_CONFIG,
                format!(
                    "Null value not supported for topic configs: {}",
                    nulls.join(",")
                ),
            ),
        );
    }
    if (num_partitions != -1 || replication_factor != -1) && !explicit.is_empty() {
        return fail(planned, err(code::INVALID_REQUEST, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."));
    }
    let assignment = if explicit.is_empty() {
        let n = if num_partitions == -1 {
            ctx.config.num_partitions
        } else {
            num_partitions
        };
        let rf = if replication_factor == -1 {
            ctx.config.default_replication_factor
        } else {
            i32::from(replication_factor)
        };
        if let Err(e) = admin::check_partition_count_fits(name, n) {
            return fail(planned, from_common(&e));
        }
        match assign_replicas_to_brokers(&alive_broker_metadatas(snap), n, rf, -1, -1) {
            Ok(a) => a,
            Err(e) => return fail(planned, err(e.code(), e.to_string())),
        }
    } else {
        explicit.iter().cloned().collect()
    };
    let config_map: BTreeMap<String, String> = configs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    let Some(zk) = ctx.zk() else {
        return fail(planned, err(-1, "ZooKeeper session not available"));
    };
    if let Err(e) = admin::validate_topic_create(&zk, name, &assignment).await {
        return fail(planned, from_common(&e));
    }
    // Too big for one znode: refused before anything is written (also for validate_only).
    let sized = samsa_common::zk::znodes::TopicZNode::new(
        Some(samsa_common::types::kafka_uuid::random_topic_id()),
        assignment.clone(),
    );
    if let Err(e) = admin::check_topic_znode_fits(name, &sized) {
        return fail(planned, from_common(&e));
    }
    let (c, m) = validate_topic_props(&ctx.config, name, &config_map);
    if c != code::NONE {
        return fail(planned, (c, m));
    }
    planned.assignment = assignment.clone();
    planned.configs = config_map.clone();
    if validate_only {
        planned.partitions = assignment.keys().copied().collect();
        return planned;
    }
    let uses_topic_id = samsa_controller::ControllerConfig {
        inter_broker_protocol_version: ctx.config.inter_broker_protocol_version.clone(),
        ..samsa_controller::ControllerConfig::new(ctx.broker_id)
    }
    .topic_ids_supported();
    if quota.record(assignment.len() as f64).is_err() {
        return fail(planned, (THROTTLING_QUOTA_EXCEEDED, None));
    }
    match admin::create_topic_with_assignment(&zk, name, &config_map, &assignment, uses_topic_id)
        .await
    {
        Ok(_) => {
            info!(
                topic = name,
                partitions = assignment.len(),
                "created topic in ZooKeeper"
            );
            planned.partitions = assignment.keys().copied().collect();
            planned
        }
        Err(e) => fail(planned, from_common(&e)),
    }
}

/// True when every partition of `topic` in `partitions` has a leader in the cache.
fn all_have_leaders(snap: &MetadataSnapshot, topic: &str, partitions: &[i32]) -> bool {
    let Some(t) = snap.topics.get(topic) else {
        return partitions.is_empty();
    };
    partitions
        .iter()
        .all(|p| t.partitions.get(p).is_some_and(|s| s.leader != NO_LEADER))
}

/// Wait until `done(snapshot)` holds or `timeout` passes (driven by metadata updates).
/// Returns the last snapshot and whether `done` held.
pub async fn wait_for_metadata(
    ctx: &BrokerContext,
    timeout: Duration,
    mut done: impl FnMut(&MetadataSnapshot) -> bool,
) -> bool {
    let mut updates = ctx.metadata_cache.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        updates.borrow_and_update();
        if done(&ctx.metadata_cache.snapshot()) {
            return true;
        }
        match tokio::time::timeout_at(deadline, updates.changed()).await {
            Ok(Ok(())) => continue,
            _ => return done(&ctx.metadata_cache.snapshot()),
        }
    }
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: CreateTopicsRequest,
) -> Result<CreateTopicsResponse> {
    let version = header.request_api_version;
    let name_of = |t: &CreatableTopic| t.name.0.as_str().to_string();
    let mut resp = CreateTopicsResponse::default();
    let result_for = |name: &str| {
        let mut r = CreatableTopicResult::default();
        r.name = TopicName(StrBytes::from_string(name.to_string()));
        r
    };

    if !ctx.controller.is_active() {
        for t in &req.topics {
            let mut r = result_for(&name_of(t));
            r.error_code = code::NOT_CONTROLLER;
            resp.topics.push(r);
        }
        return Ok(resp);
    }

    // Kafka's `newQuotaFor(request, strictSinceVersion = 6)`.
    let mut quota = MutationQuota::new(
        &ctx.quotas,
        crate::dispatch::user_of(conn),
        crate::dispatch::client_of(header),
        version,
        6,
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(name_of(t)).or_default() += 1;
    }
    // CREATE on the cluster, else on each topic; DESCRIBE_CONFIGS decides whether the
    // configs of a created topic are returned.
    let creatable = if enforce::cluster(ctx, conn, Operation::Create) {
        enforce::Allowed::All
    } else {
        enforce::filter(
            ctx,
            conn,
            Operation::Create,
            ResourceType::Topic,
            req.topics.iter().map(|t| t.name.0.as_str()),
        )
    };
    let config_describable = enforce::filter(
        ctx,
        conn,
        Operation::DescribeConfigs,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    );
    // Topics refused before any attempt (duplicates, authorization) keep their
    // topic-config error; a failed creation clears it, as Kafka does.
    let mut not_attempted = std::collections::HashSet::new();
    let snap = ctx.metadata_cache.snapshot();
    let mut planned: Vec<(String, Planned)> = Vec::new();
    let mut seen_dupes = std::collections::HashSet::new();
    for t in &req.topics {
        let name = name_of(t);
        if counts.get(&name).copied().unwrap_or(0) > 1 || !creatable.contains(&name) {
            not_attempted.insert(name.clone());
        }
        if counts.get(&name).copied().unwrap_or(0) == 1 && !creatable.contains(&name) {
            planned.push((
                name,
                Planned {
                    outcome: err(
                        denied_error(ResourceType::Topic).code(),
                        "Authorization failed.",
                    ),
                    partitions: Vec::new(),
                    assignment: BTreeMap::new(),
                    configs: BTreeMap::new(),
                },
            ));
            continue;
        }
        if counts.get(&name).copied().unwrap_or(0) > 1 {
            if seen_dupes.insert(name.clone()) {
                planned.push((
                    name,
                    Planned {
                        outcome: err(
                            code::INVALID_REQUEST,
                            "Found multiple entries for this topic.",
                        ),
                        partitions: Vec::new(),
                        assignment: BTreeMap::new(),
                        configs: BTreeMap::new(),
                    },
                ));
            }
            continue;
        }
        let explicit: Vec<(i32, Vec<BrokerId>)> = t
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect();
        let configs: Vec<(String, Option<String>)> = t
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.as_str().to_string(),
                    c.value.as_ref().map(|v| v.as_str().to_string()),
                )
            })
            .collect();
        let p = plan_topic(
            ctx,
            &snap,
            &name,
            t.num_partitions,
            t.replication_factor,
            &explicit,
            &configs,
            req.validate_only,
            &mut quota,
        )
        .await;
        planned.push((name, p));
    }

    // Wait for leaders of the created topics (DelayedCreatePartitions).
    let created: Vec<(String, Vec<i32>)> = planned
        .iter()
        .filter(|(_, p)| p.outcome.0 == code::NONE && !p.partitions.is_empty())
        .map(|(n, p)| (n.clone(), p.partitions.clone()))
        .collect();
    let mut timed_out: std::collections::HashSet<String> = std::collections::HashSet::new();
    if !req.validate_only && !created.is_empty() {
        if req.timeout_ms <= 0 {
            timed_out.extend(created.iter().map(|(n, _)| n.clone()));
        } else {
            let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
            wait_for_metadata(ctx, timeout, |s| {
                created.iter().all(|(n, ps)| all_have_leaders(s, n, ps))
            })
            .await;
            let s = ctx.metadata_cache.snapshot();
            for (n, ps) in &created {
                if !all_have_leaders(&s, n, ps) {
                    timed_out.insert(n.clone());
                }
            }
        }
    }

    let snap = ctx.metadata_cache.snapshot();
    for (name, p) in planned {
        let mut r = result_for(&name);
        let (code_, msg) = if timed_out.contains(&name) {
            (code::REQUEST_TIMED_OUT, None)
        } else {
            p.outcome.clone()
        };
        r.error_code = code_;
        if version >= 1 {
            r.error_message = msg.map(StrBytes::from_string);
        }
        let describable = config_describable.contains(&name);
        if !describable && (code_ == code::NONE || not_attempted.contains(&name)) {
            r.topic_config_error_code = denied_error(ResourceType::Topic).code();
        }
        if code_ == code::NONE && !describable {
            // Created, but its configs, counts and id are not the principal's to see.
            r.configs = Some(Vec::new());
            r.num_partitions = -1;
            r.replication_factor = -1;
        } else if code_ == code::NONE {
            if version >= 7 {
                if let Some(id) = snap.topic_id(&name) {
                    r.topic_id = id;
                } else if let Some(zk) = ctx.zk() {
                    if let Ok(Some((z, _))) = zk.get_topic(&name).await {
                        r.topic_id = z.topic_id.unwrap_or_default();
                    }
                }
            }
            if version >= 5 {
                r.num_partitions = p.assignment.len() as i32;
                r.replication_factor = p.assignment.get(&0).map_or(-1, |a| a.len() as i16);
                r.configs = Some(
                    topic_entries(&ctx.config, &p.configs)
                        .into_iter()
                        .map(|e| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = StrBytes::from_string(e.name);
                            c.value = e.value.map(StrBytes::from_string);
                            c.read_only = e.read_only;
                            c.config_source = e.source;
                            c.is_sensitive = e.sensitive;
                            c
                        })
                        .collect(),
                );
            }
        } else {
            r.configs = Some(Vec::new());
            r.num_partitions = -1;
            r.replication_factor = -1;
        }
        resp.topics.push(r);
    }
    resp.throttle_time_ms = quota.finish(conn);
    Ok(resp)
}

/// Metadata auto-creation (Kafka's `AutoTopicCreationManager`, ZooKeeper mode): write the topic
/// with `num.partitions` / `default.replication.factor` (internal topics use their own counts,
/// replication factors and configs) from any broker, without waiting. Returns the error code the
/// Metadata response should carry for the topic: LEADER_NOT_AVAILABLE (5) once creation is under
/// way (or already done by someone else), INVALID_REPLICATION_FACTOR (38) etc. on failure, and
/// COORDINATOR_NOT_AVAILABLE (15) for internal topics with too few live brokers.
pub async fn auto_create_topic(ctx: &Arc<BrokerContext>, name: &str) -> i16 {
    const LEADER_NOT_AVAILABLE: i16 = 5;
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    let cfg = &ctx.config;
    let snap = ctx.metadata_cache.snapshot();
    let brokers = alive_broker_metadatas(&snap);
    let (partitions, rf, configs): (i32, i32, BTreeMap<String, String>) = match name {
        "__consumer_offsets" => (
            cfg.offsets_topic_num_partitions,
            i32::from(cfg.offsets_topic_replication_factor),
            [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "producer".to_string()),
                (
                    "segment.bytes".to_string(),
                    cfg.offsets_topic_segment_bytes.to_string(),
                ),
            ]
            .into(),
        ),
        "__transaction_state" => (
            cfg.transaction_state_log_num_partitions,
            i32::from(cfg.transaction_state_log_replication_factor),
            [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "uncompressed".to_string()),
                (
                    "min.insync.replicas".to_string(),
                    cfg.transaction_state_log_min_isr.to_string(),
                ),
                (
                    "segment.bytes".to_string(),
                    cfg.transaction_state_log_segment_bytes.to_string(),
                ),
                (
                    "unclean.leader.election.enable".to_string(),
                    "false".to_string(),
                ),
            ]
            .into(),
        ),
        _ => (
            cfg.num_partitions,
            cfg.default_replication_factor,
            BTreeMap::new(),
        ),
    };
    let internal = admin::is_internal_topic(name);
    if internal && (brokers.len() as i32) < rf {
        return COORDINATOR_NOT_AVAILABLE;
    }
    let Some(zk) = ctx.zk() else {
        return LEADER_NOT_AVAILABLE;
    };
    let assignment = match assign_replicas_to_brokers(&brokers, partitions, rf, -1, -1) {
        Ok(a) => a,
        Err(e) => return e.code(),
    };
    if let Err(e) = admin::validate_topic_create(&zk, name, &assignment).await {
        return match e.api_code() {
            Some(code::TOPIC_ALREADY_EXISTS) => LEADER_NOT_AVAILABLE,
            Some(c) => c,
            None => LEADER_NOT_AVAILABLE,
        };
    }
    let uses_topic_id = samsa_controller::ControllerConfig {
        inter_broker_protocol_version: cfg.inter_broker_protocol_version.clone(),
        ..samsa_controller::ControllerConfig::new(ctx.broker_id)
    }
    .topic_ids_supported();
    match admin::create_topic_with_assignment(&zk, name, &configs, &assignment, uses_topic_id).await
    {
        Ok(_) => {
            info!(topic = name, "auto-created topic");
            LEADER_NOT_AVAILABLE
        }
        Err(e) => match e.api_code() {
            Some(code::TOPIC_ALREADY_EXISTS) | None => LEADER_NOT_AVAILABLE,
            Some(c) => c,
        },
    }
}
