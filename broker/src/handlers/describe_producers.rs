//! DescribeProducers (API 61, v0): the producers with state in each requested partition,
//! idempotent and transactional alike (Kafka `KafkaApis.handleDescribeProducersRequest`,
//! `ReplicaManager.activeProducerState`).
//!
//! Topic errors cover all its partitions: an illegal name is INVALID_TOPIC_EXCEPTION with
//! Kafka's message, a topic missing from the metadata cache UNKNOWN_TOPIC_OR_PARTITION.
//! Then per partition: not hosted here -> NOT_LEADER_OR_FOLLOWER (UNKNOWN_TOPIC_OR_PARTITION
//! if the partition is unknown to the cluster), offline log dir -> KAFKA_STORAGE_ERROR,
//! hosted without a log -> NOT_LEADER_OR_FOLLOWER. As in Kafka, a follower answers from its
//! own replica of the producer state. Per producer: id, epoch, last sequence (-1 without a
//! batch), last timestamp, coordinator epoch and the first offset of its open transaction (-1).

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, ProducerId, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::handlers::metadata::validate_topic_name;
use crate::replica::partition::codes;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const INVALID_TOPIC_EXCEPTION: i16 = 17;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: DescribeProducersRequest,
) -> Result<DescribeProducersResponse> {
    let rm = ctx.replicas()?.clone();
    let snap = ctx.metadata_cache.snapshot();
    let mut resp = DescribeProducersResponse::default();
    for t in &req.topics {
        let mut tr = TopicResponse::default();
        tr.name = t.name.clone();
        let topic_error = match validate_topic_name(t.name.as_str()) {
            Err(msg) => Some((INVALID_TOPIC_EXCEPTION, Some(msg))),
            Ok(()) if !enforce::allow(ctx, conn, Operation::Read, ResourceType::Topic, &t.name) => {
                Some((denied_error(ResourceType::Topic).code(), None))
            }
            Ok(()) if !snap.contains_topic(t.name.as_str()) => {
                Some((codes::UNKNOWN_TOPIC_OR_PARTITION, None))
            }
            Ok(()) => None,
        };
        for &p in &t.partition_indexes {
            let mut pr = PartitionResponse::default();
            pr.partition_index = p;
            let tp = TopicPartition::new(t.name.to_string(), p);
            if let Some((code, msg)) = &topic_error {
                pr.error_code = *code;
                // Kafka's ApiError carries the exception message, or the code's default one.
                pr.error_message = Some(StrBytes::from_string(
                    msg.clone()
                        .unwrap_or_else(|| default_message(*code).to_string()),
                ));
            } else {
                match rm.partition(&tp) {
                    None if snap.partition(&tp).is_some() => {
                        pr.error_code = codes::NOT_LEADER_OR_FOLLOWER;
                    }
                    None => pr.error_code = codes::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(part) if part.is_offline() => {
                        pr.error_code = codes::KAFKA_STORAGE_ERROR;
                    }
                    Some(part) => match part.log() {
                        None => pr.error_code = codes::NOT_LEADER_OR_FOLLOWER,
                        Some(log) => {
                            pr.active_producers = log
                                .active_producers()
                                .into_iter()
                                .map(|e| {
                                    let mut s = ProducerState::default();
                                    s.producer_id = ProducerId(e.producer_id);
                                    s.producer_epoch = i32::from(e.producer_epoch);
                                    s.last_sequence = e.last_seq();
                                    s.last_timestamp = e.last_timestamp;
                                    s.coordinator_epoch = e.coordinator_epoch;
                                    s.current_txn_start_offset =
                                        e.current_txn_first_offset.unwrap_or(-1);
                                    s
                                })
                                .collect();
                        }
                    },
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    Ok(resp)
}

/// Kafka's default message of the topic-level errors (`Errors.message()`).
fn default_message(code: i16) -> &'static str {
    match code {
        codes::UNKNOWN_TOPIC_OR_PARTITION => "This server does not host this topic-partition.",
        c if c == denied_error(ResourceType::Topic).code() => {
            enforce::denied_message(ResourceType::Topic)
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::AppendOrigin;
    use crate::log::LogConfig;
    use crate::replica::testing::{batch_with, chrono_now, leader_context};
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::records::Compression;

    #[tokio::test]
    async fn lists_idempotent_producers() {
        let (ctx, logs) = leader_context(LogConfig::default(), "t", uuid::Uuid::from_u128(3));
        let rm = ctx.replicas().expect("rm").clone();
        let tp = TopicPartition::new("t", 0);
        let ts = chrono_now();
        let out = rm
            .append_records(
                5000,
                1,
                AppendOrigin::Client,
                vec![(tp.clone(), batch_with(3, Compression::None, 42, 2, 0, ts))],
            )
            .await;
        assert_eq!(out[0].1.error_code, codes::NONE);
        let mut tr = TopicRequest::default();
        tr.name = TopicName("t".into());
        tr.partition_indexes = vec![0];
        let mut req = DescribeProducersRequest::default();
        req.topics = vec![tr];
        let resp = handle(
            &ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &RequestHeader::default(),
            req,
        )
        .await
        .expect("ok");
        let p = &resp.topics[0].partitions[0];
        // "t" is not in this context's metadata cache.
        assert_eq!(p.error_code, codes::UNKNOWN_TOPIC_OR_PARTITION);
        // The log itself lists the producer.
        let log = rm.partition(&tp).and_then(|p| p.log()).expect("log");
        let ps = log.active_producers();
        assert_eq!(ps.len(), 1);
        assert_eq!(
            (ps[0].producer_id, ps[0].producer_epoch, ps[0].last_seq()),
            (42, 2, 2)
        );
        assert_eq!(ps[0].current_txn_first_offset, None);
        let mut tr = TopicRequest::default();
        tr.name = TopicName("bad name".into());
        tr.partition_indexes = vec![0];
        let mut req = DescribeProducersRequest::default();
        req.topics = vec![tr];
        let resp = handle(
            &ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &RequestHeader::default(),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            INVALID_TOPIC_EXCEPTION
        );
        drop(logs);
    }
}
