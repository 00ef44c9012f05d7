//! ListPartitionReassignments (key 46), v0: ongoing reassignments known to the controller.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId as KBrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const NOT_CONTROLLER: i16 = 41;

fn ids(v: &[i32]) -> Vec<KBrokerId> {
    v.iter().map(|b| KBrokerId(*b)).collect()
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: ListPartitionReassignmentsRequest,
) -> Result<ListPartitionReassignmentsResponse> {
    if !enforce::cluster(ctx, conn, Operation::Describe) {
        let mut resp = ListPartitionReassignmentsResponse::default();
        resp.error_code = denied_error(ResourceType::Cluster).code();
        resp.error_message = Some(StrBytes::from_static_str(
            crate::handlers::alter_partition_reassignments::NOT_AUTHORIZED,
        ));
        for t in req.topics.iter().flatten() {
            let mut tr = OngoingTopicReassignment::default();
            tr.name = t.name.clone();
            tr.partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let mut op = OngoingPartitionReassignment::default();
                    op.partition_index = *p;
                    op
                })
                .collect();
            resp.topics.push(tr);
        }
        return Ok(resp);
    }
    let partitions: Option<Vec<TopicPartition>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(move |p| TopicPartition::new(t.name.0.to_string(), *p))
            })
            .collect()
    });
    let mut resp = ListPartitionReassignmentsResponse::default();
    let results = match ctx.controller.get() {
        Some(c) => c.list_partition_reassignments(partitions).await,
        None => Err(NOT_CONTROLLER),
    };
    match results {
        Ok(r) => {
            let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
            for (tp, replicas, adding, removing) in r {
                let mut p = OngoingPartitionReassignment::default();
                p.partition_index = tp.partition;
                p.replicas = ids(&replicas);
                p.adding_replicas = ids(&adding);
                p.removing_replicas = ids(&removing);
                by_topic.entry(tp.topic).or_default().push(p);
            }
            resp.topics = by_topic
                .into_iter()
                .map(|(t, parts)| {
                    let mut r = OngoingTopicReassignment::default();
                    r.name = TopicName(StrBytes::from_string(t));
                    r.partitions = parts;
                    r
                })
                .collect();
        }
        Err(code) => resp.error_code = code,
    }
    Ok(resp)
}
