//! AddPartitionsToTxn (API 24, v0-5; Kafka's `handleAddPartitionsToTxnRequest`).
//!
//! v0-3 come from producers: one transaction, its partitions added (state Ongoing, written
//! before answering). v4+ come from partition leaders (KIP-890 part 1): a batch of
//! transactions, each either added or, with `VerifyOnly`, checked (a partition not in the
//! transaction gets TRANSACTION_ABORTABLE). A partition unknown to the metadata cache fails
//! its transaction: UNKNOWN_TOPIC_OR_PARTITION for it, OPERATION_NOT_ATTEMPTED for the rest.
//! Other errors apply to every partition of the transaction; PRODUCER_FENCED is answered as
//! INVALID_PRODUCER_EPOCH below v2.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::txn::codes::*;
use crate::coordinator::txn::ops::Tp;
use crate::error::Result;
use crate::handlers::metadata::is_internal;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> BTreeSet<Tp> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

/// Results grouped by topic, in topic order.
fn topic_results(results: Vec<(Tp, i16)>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, p), code) in results {
        if out.last().is_none_or(|t| t.name.0.as_str() != topic) {
            let mut t = AddPartitionsToTxnTopicResult::default();
            t.name = TopicName(StrBytes::from_string(topic));
            out.push(t);
        }
        let mut r = AddPartitionsToTxnPartitionResult::default();
        r.partition_index = p;
        r.partition_error_code = code;
        if let Some(t) = out.last_mut() {
            t.results_by_partition.push(r);
        }
    }
    out
}

/// Handle one transaction; per-partition codes in partition order. `writable` says whether
/// a topic passed the producer's WRITE check (always true for brokers' v4+ requests).
#[allow(clippy::too_many_arguments)]
async fn one(
    ctx: &Arc<BrokerContext>,
    version: i16,
    txn_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    parts: BTreeSet<Tp>,
    writable: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<(Tp, i16)> {
    let snap = ctx.metadata_cache.snapshot();
    let refused = denied_error(ResourceType::Topic).code();
    let unknown: Vec<&Tp> = parts
        .iter()
        .filter(|(t, p)| {
            !writable(t)
                || snap
                    .partition(&samsa_common::types::TopicPartition {
                        topic: t.clone(),
                        partition: *p,
                    })
                    .is_none()
        })
        .collect();
    if !unknown.is_empty() {
        return parts
            .iter()
            .map(|tp| {
                let code = if !writable(&tp.0) {
                    refused
                } else if unknown.contains(&tp) {
                    UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    OPERATION_NOT_ATTEMPTED
                };
                (tp.clone(), code)
            })
            .collect();
    }
    let all = |code: i16| parts.iter().map(|tp| (tp.clone(), code)).collect();
    if verify_only {
        return match ctx
            .txns
            .verify_partitions(txn_id, producer_id, producer_epoch, &parts)
        {
            Ok(r) => r,
            Err(code) => all(code),
        };
    }
    let code = ctx
        .txns
        .add_partitions(txn_id, producer_id, producer_epoch, &parts)
        .await;
    all(if version < 2 && code == PRODUCER_FENCED {
        INVALID_PRODUCER_EPOCH
    } else {
        code
    })
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse> {
    crate::coordinator::txn::sync_partition_count(ctx);
    let version = header.request_api_version;
    let mut resp = AddPartitionsToTxnResponse::default();
    if version < 4 {
        let txn_id = &req.v3_and_below_transactional_id.0;
        let parts = partitions_of(&req.v3_and_below_topics);
        if !enforce::allow(
            ctx,
            conn,
            Operation::Write,
            ResourceType::TransactionalId,
            txn_id,
        ) {
            let code = denied_error(ResourceType::TransactionalId).code();
            resp.results_by_topic_v3_and_below =
                topic_results(parts.into_iter().map(|tp| (tp, code)).collect());
            return Ok(resp);
        }
        // Producers need WRITE on each topic; Kafka leaves internal topics out of the
        // authorized set, so they are always refused here.
        let allowed = enforce::filter(
            ctx,
            conn,
            Operation::Write,
            ResourceType::Topic,
            parts.iter().map(|(t, _)| t.as_str()),
        );
        let writable = |t: &str| !is_internal(t) && allowed.contains(t);
        let results = one(
            ctx,
            version,
            &req.v3_and_below_transactional_id.0,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            parts.clone(),
            &writable,
        )
        .await;
        resp.results_by_topic_v3_and_below = topic_results(results);
        return Ok(resp);
    }
    // v4+ come from brokers.
    if !enforce::cluster(ctx, conn, Operation::ClusterAction) {
        resp.error_code = denied_error(ResourceType::Cluster).code();
        return Ok(resp);
    }
    for t in &req.transactions {
        let results = one(
            ctx,
            version,
            &t.transactional_id.0,
            t.producer_id.0,
            t.producer_epoch,
            t.verify_only,
            partitions_of(&t.topics),
            &|_| true,
        )
        .await;
        let mut r = AddPartitionsToTxnResult::default();
        r.transactional_id = t.transactional_id.clone();
        r.topic_results = topic_results(results);
        resp.results_by_transaction.push(r);
    }
    Ok(resp)
}
