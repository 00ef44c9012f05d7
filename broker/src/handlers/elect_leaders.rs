//! ElectLeaders (key 43), v0-v2: admin-triggered preferred (0) or unclean (1) leader
//! elections, run by the controller component. Like Kafka's `DelayedElectLeader`, the
//! answer waits until this broker's metadata cache shows every elected leader; partitions
//! still not showing theirs when the request's `timeout_ms` ends get REQUEST_TIMED_OUT.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::TopicPartition;
use samsa_controller::ElectionResult;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const NOT_CONTROLLER: i16 = 41;
const REQUEST_TIMED_OUT: i16 = 7;

/// Waits (up to `timeout`) until the metadata cache names each elected partition's new
/// leader; those that never show it become REQUEST_TIMED_OUT.
async fn await_leaders(
    ctx: &BrokerContext,
    results: Vec<ElectionResult>,
    timeout: Duration,
) -> Vec<(TopicPartition, i16, Option<String>)> {
    let deadline = tokio::time::Instant::now() + timeout;
    // Subscribe before reading the snapshot so no update slips in between.
    let mut updates = ctx.metadata_cache.subscribe();
    let shown = |r: &ElectionResult| -> bool {
        match r.leader {
            Some(l) if r.error_code == 0 => ctx
                .metadata_cache
                .snapshot()
                .partition(&r.partition)
                .is_some_and(|p| p.leader == l),
            _ => true,
        }
    };
    while !results.iter().all(shown) {
        match tokio::time::timeout_at(deadline, updates.changed()).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    results
        .into_iter()
        .map(|r| {
            if shown(&r) {
                (r.partition, r.error_code, r.message)
            } else {
                (r.partition, REQUEST_TIMED_OUT, None)
            }
        })
        .collect()
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: ElectLeadersRequest,
) -> Result<ElectLeadersResponse> {
    let election_type = if header.request_api_version >= 1 {
        req.election_type
    } else {
        0
    };
    let partitions: Option<Vec<TopicPartition>> = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| TopicPartition::new(t.topic.0.to_string(), *p))
            })
            .collect()
    });
    let mut resp = ElectLeadersResponse::default();
    let authorized = enforce::cluster(ctx, conn, Operation::Alter);
    let results = if !authorized {
        // Kafka: the error at the top and on every requested partition.
        let code = denied_error(ResourceType::Cluster).code();
        resp.error_code = code;
        Err(code)
    } else {
        match ctx.controller.get() {
            Some(c) => c.elect_leaders(partitions.clone(), election_type).await,
            None => Err(NOT_CONTROLLER),
        }
    };
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    let per_partition: Vec<(TopicPartition, i16, Option<String>)> = match results {
        Ok(r) => await_leaders(ctx, r, timeout).await,
        Err(code) => match partitions {
            // Kafka reports NOT_CONTROLLER per requested partition.
            Some(ps) => ps.into_iter().map(|tp| (tp, code, None)).collect(),
            None => {
                resp.error_code = code;
                Vec::new()
            }
        },
    };
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (tp, code, msg) in per_partition {
        let mut pr = PartitionResult::default();
        pr.partition_id = tp.partition;
        pr.error_code = code;
        pr.error_message = msg.map(StrBytes::from_string);
        by_topic.entry(tp.topic).or_default().push(pr);
    }
    resp.replica_election_results = by_topic
        .into_iter()
        .map(|(t, parts)| {
            let mut r = ReplicaElectionResult::default();
            r.topic = TopicName(StrBytes::from_string(t));
            r.partition_result = parts;
            r
        })
        .collect();
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use kafka_protocol::messages::update_metadata_request::{
        UpdateMetadataPartitionState, UpdateMetadataTopicState,
    };
    use kafka_protocol::messages::{BrokerId as KBrokerId, UpdateMetadataRequest};

    fn ctx() -> Arc<BrokerContext> {
        let p = std::collections::HashMap::from([(
            "zookeeper.connect".to_string(),
            "unused:1".to_string(),
        )]);
        let cfg = Arc::new(samsa_common::config::BrokerConfig::from_props(&p).expect("cfg"));
        Arc::new(BrokerContext::new(cfg, Vec::new()))
    }

    fn metadata(leader: i32) -> UpdateMetadataRequest {
        let mut p = UpdateMetadataPartitionState::default();
        p.partition_index = 0;
        p.leader = KBrokerId(leader);
        p.leader_epoch = 1;
        p.isr = vec![KBrokerId(1), KBrokerId(2)];
        p.replicas = vec![KBrokerId(1), KBrokerId(2)];
        let mut ts = UpdateMetadataTopicState::default();
        ts.topic_name = TopicName("t".into());
        ts.partition_states = vec![p];
        let mut r = UpdateMetadataRequest::default();
        r.controller_id = KBrokerId(1);
        r.controller_epoch = 1;
        r.topic_states = vec![ts];
        r
    }

    fn results() -> Vec<ElectionResult> {
        vec![
            ElectionResult {
                partition: TopicPartition::new("t", 0),
                error_code: 0,
                message: None,
                leader: Some(2),
            },
            ElectionResult {
                partition: TopicPartition::new("t", 1),
                error_code: 84,
                message: Some("not needed".into()),
                leader: None,
            },
        ]
    }

    /// The answer waits for the UpdateMetadata that shows the elected leader.
    #[tokio::test]
    async fn waits_until_metadata_shows_the_elected_leader() {
        let ctx = ctx();
        ctx.metadata_cache.apply(&metadata(1), 8);
        let c2 = ctx.clone();
        let waiter =
            tokio::spawn(
                async move { await_leaders(&c2, results(), Duration::from_secs(30)).await },
            );
        // Another update that does not show leader 2 yet: still waiting.
        ctx.metadata_cache.apply(&metadata(1), 8);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        ctx.metadata_cache.apply(&metadata(2), 8);
        let out = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("answered once the leader shows")
            .expect("join");
        assert_eq!(out[0].1, 0);
        assert_eq!((out[1].1, out[1].2.as_deref()), (84, Some("not needed")));
    }

    /// A leader that never shows within the request timeout: REQUEST_TIMED_OUT.
    #[tokio::test]
    async fn times_out_when_the_leader_never_shows() {
        let ctx = ctx();
        ctx.metadata_cache.apply(&metadata(1), 8);
        let out = await_leaders(&ctx, results(), Duration::from_millis(100)).await;
        assert_eq!(out[0].1, REQUEST_TIMED_OUT);
        assert_eq!(out[1].1, 84);
    }
}
