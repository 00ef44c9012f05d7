//! AlterPartitionReassignments (key 45), v0: start or cancel (null replicas) partition
//! reassignments; run by the controller component (spec §3.9).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::{BrokerId, TopicPartition};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const NOT_CONTROLLER: i16 = 41;
/// The message of Kafka's `ClusterAuthorizationException` for a refused cluster operation.
pub const NOT_AUTHORIZED: &str = "Request is not authorized.";

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: AlterPartitionReassignmentsRequest,
) -> Result<AlterPartitionReassignmentsResponse> {
    let wanted: Vec<(TopicPartition, Option<Vec<BrokerId>>)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    p.replicas
                        .as_ref()
                        .map(|rs| rs.iter().map(|b| b.0).collect()),
                )
            })
        })
        .collect();
    let mut resp = AlterPartitionReassignmentsResponse::default();
    if !enforce::cluster(ctx, conn, Operation::Alter) {
        // Kafka's `getErrorResponse`: the error at the top and on every partition.
        let code = denied_error(ResourceType::Cluster).code();
        let msg = StrBytes::from_static_str(NOT_AUTHORIZED);
        resp.error_code = code;
        resp.error_message = Some(msg.clone());
        for t in &req.topics {
            let mut tr = ReassignableTopicResponse::default();
            tr.name = t.name.clone();
            for p in &t.partitions {
                let mut pr = ReassignablePartitionResponse::default();
                pr.partition_index = p.partition_index;
                pr.error_code = code;
                pr.error_message = Some(msg.clone());
                tr.partitions.push(pr);
            }
            resp.responses.push(tr);
        }
        return Ok(resp);
    }
    let results = match ctx.controller.get() {
        Some(c) => c.alter_partition_reassignments(wanted).await,
        None => Err(NOT_CONTROLLER),
    };
    match results {
        Ok(r) => {
            let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> =
                BTreeMap::new();
            for (tp, code, msg) in r {
                let mut pr = ReassignablePartitionResponse::default();
                pr.partition_index = tp.partition;
                pr.error_code = code;
                pr.error_message = msg.map(StrBytes::from_string);
                by_topic.entry(tp.topic).or_default().push(pr);
            }
            resp.responses = by_topic
                .into_iter()
                .map(|(t, parts)| {
                    let mut r = ReassignableTopicResponse::default();
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
