//! TxnOffsetCommit (API 28, v0-v4): a transactional producer commits a consumer group's
//! offsets inside its transaction (Kafka `KafkaApis.handleTxnOffsetCommitRequest` and the ZK
//! group coordinator's `handleTxnCommitOffsets`).
//!
//! Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION; the group-level checks
//! (INVALID_GROUP_ID, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR) apply to the rest. With
//! `transaction.partition.verification.enable`, the group's `__consumer_offsets` partition is
//! first verified with the transaction coordinator (KIP-890; base sequence -1), its errors
//! mapped like append errors (NETWORK_EXCEPTION -> COORDINATOR_LOAD_IN_PROGRESS,
//! NOT_LEADER_OR_FOLLOWER -> NOT_COORDINATOR, ...; TRANSACTION_ABORTABLE only from v4, else
//! INVALID_TXN_STATE). The coordinator then validates member / generation (v3+), writes the
//! offsets as the producer's transactional batch (acks -1) and keeps them pending until the
//! transaction's marker (see `coordinator/group/txn_offsets.rs`).

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::{
    codes, commit_error, coordinator_error, now_ms, CommittedOffset, TxnWrite,
};
use crate::error::Result;
use crate::log::producer_state::VerificationGuard;
use crate::replica::txn_verification::coordinator_for;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: TxnOffsetCommitRequest,
) -> Result<TxnOffsetCommitResponse> {
    let version = header.request_api_version;
    let gid = req.group_id.0.to_string();
    // WRITE on the transactional id, then READ on the group: either refusal answers every
    // partition (Kafka `TxnOffsetCommitRequest.getErrorResponse`).
    let refused = if !enforce::allow(
        ctx,
        conn,
        Operation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(ResourceType::TransactionalId)
    } else if !enforce::allow(ctx, conn, Operation::Read, ResourceType::Group, &gid) {
        Some(ResourceType::Group)
    } else {
        None
    };
    if let Some(rt) = refused {
        return Ok(error_response(&req, denied_error(rt).code()));
    }
    let topic_allowed = enforce::filter(
        ctx,
        conn,
        Operation::Read,
        ResourceType::Topic,
        req.topics.iter().map(|t| t.name.0.as_str()),
    );
    let group_error = coordinator_error(ctx, &gid);
    let now = now_ms();
    let snap = ctx.metadata_cache.snapshot();
    let mut resp = TxnOffsetCommitResponse::default();
    let mut slots = Vec::new();
    let mut offsets = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let mut rt = TxnOffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        let known = snap.topics.get(t.name.0.as_str());
        let authorized = topic_allowed.contains(t.name.0.as_str());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut rp = TxnOffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            let exists = known.is_some_and(|tm| tm.partitions.contains_key(&p.partition_index));
            rp.error_code = if !authorized {
                denied_error(ResourceType::Topic).code()
            } else if !exists {
                codes::UNKNOWN_TOPIC_OR_PARTITION
            } else if let Some(e) = group_error {
                e
            } else {
                slots.push((ti, pi));
                offsets.push((
                    (t.name.0.to_string(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 2 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        commit_timestamp: now,
                        expire_timestamp: None,
                    },
                ));
                codes::NONE
            };
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    if offsets.is_empty() {
        return Ok(resp);
    }
    let pid = req.producer_id.0;
    let epoch = req.producer_epoch;
    let out = match verify(ctx, &req, &gid, version).await {
        Err(code) => vec![code; offsets.len()],
        Ok(guard) => {
            let write = TxnWrite {
                producer_id: pid,
                producer_epoch: epoch,
                guard,
            };
            // Before v3 there is no member information: generation -1, no member.
            let (generation, member, instance) = if version >= 3 {
                (
                    req.generation_id,
                    req.member_id.to_string(),
                    req.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            } else {
                (-1, String::new(), None)
            };
            ctx.groups
                .commit_txn_offsets(
                    &gid,
                    write,
                    generation,
                    &member,
                    instance.as_deref(),
                    offsets,
                )
                .await
        }
    };
    for ((ti, pi), code) in slots.into_iter().zip(out) {
        resp.topics[ti].partitions[pi].error_code = code;
    }
    Ok(resp)
}

/// Every partition of the request with `code`.
fn error_response(req: &TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    let mut resp = TxnOffsetCommitResponse::default();
    for t in &req.topics {
        let mut rt = TxnOffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partitions {
            let mut rp = TxnOffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = code;
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}

/// KIP-890 verification of the group's offsets partition: the guard to append with, or the
/// error every offset gets.
async fn verify(
    ctx: &Arc<BrokerContext>,
    req: &TxnOffsetCommitRequest,
    gid: &str,
    version: i16,
) -> std::result::Result<VerificationGuard, i16> {
    if !ctx.config.transaction_partition_verification_enable {
        return Ok(VerificationGuard::SENTINEL);
    }
    let Some(partition) = ctx.groups.partition_of(gid) else {
        return Err(codes::NOT_COORDINATOR);
    };
    let tp = TopicPartition::new("__consumer_offsets", partition);
    let rm = ctx.replicas().map_err(|e| commit_error(e.code()))?;
    let (log, _) = rm
        .leader_partition(&tp)
        .and_then(|p| p.leader_log())
        .map_err(|e| commit_error(e.code()))?;
    let guard = log.maybe_start_transaction_verification(req.producer_id.0, -1, req.producer_epoch);
    if guard == VerificationGuard::SENTINEL {
        return Ok(guard);
    }
    let txn_id = req.transactional_id.0.as_str();
    let coordinator = coordinator_for(
        &ctx.metadata_cache.snapshot(),
        txn_id,
        ctx.config.transaction_state_log_num_partitions,
        &ctx.config.inter_broker_listener_name,
    );
    let errors = ctx
        .txn_verifier
        .verify(
            coordinator,
            txn_id,
            req.producer_id.0,
            req.producer_epoch,
            vec![tp.clone()],
            version >= 4,
        )
        .await;
    match errors.get(&tp) {
        Some(code) => Err(commit_error(*code)),
        None => Ok(guard),
    }
}
