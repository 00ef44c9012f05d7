//! InitProducerId (key 22), v0-v5 (Kafka's `handleInitProducerIdRequest`).
//!
//! Without a transactional id (idempotent producers): a fresh producer id with epoch 0.
//! With one: the transaction coordinator bumps the epoch (or rotates the producer id when
//! the epoch is exhausted), fences an open transaction (answering CONCURRENT_TRANSACTIONS
//! while it is aborted) and supports KIP-360 recovery with the current producer id/epoch
//! (v3+). PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH below v4.

use std::sync::Arc;

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};
use tracing::warn;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::txn::codes::{INVALID_PRODUCER_EPOCH, PRODUCER_FENCED};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const INVALID_REQUEST: i16 = 42;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: InitProducerIdRequest,
) -> Result<InitProducerIdResponse> {
    crate::coordinator::txn::sync_partition_count(ctx);
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    // Authorization first: WRITE on the transactional id, or for an idempotent producer
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic (Kafka 3.x).
    let authorized = match req.transactional_id.as_ref() {
        Some(txn_id) => enforce::allow(
            ctx,
            conn,
            Operation::Write,
            ResourceType::TransactionalId,
            txn_id,
        )
        .then_some(())
        .ok_or(ResourceType::TransactionalId),
        None => (enforce::cluster(ctx, conn, Operation::IdempotentWrite)
            || enforce::any_resource(ctx, conn, Operation::Write, ResourceType::Topic))
        .then_some(())
        .ok_or(ResourceType::Cluster),
    };
    if let Err(rt) = authorized {
        resp.error_code = denied_error(rt).code();
        return Ok(resp);
    }
    // The current producer id and epoch (KIP-360) come as a pair or not at all.
    let expected = match (req.producer_id.0, req.producer_epoch) {
        (-1, -1) => None,
        (-1, _) | (_, -1) => {
            resp.error_code = INVALID_REQUEST;
            return Ok(resp);
        }
        (id, epoch) => Some((id, epoch)),
    };
    match req.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => {}
        Some("") => {
            resp.error_code = INVALID_REQUEST;
            return Ok(resp);
        }
        Some(txn_id) => {
            let (pid, epoch, code) = ctx
                .txns
                .init_producer_id(txn_id, req.transaction_timeout_ms, expected)
                .await;
            resp.producer_id = ProducerId(pid);
            resp.producer_epoch = epoch;
            resp.error_code = if header.request_api_version < 4 && code == PRODUCER_FENCED {
                INVALID_PRODUCER_EPOCH
            } else {
                code
            };
            return Ok(resp);
        }
    }
    let Some(zk) = ctx.zk() else {
        resp.error_code = COORDINATOR_LOAD_IN_PROGRESS;
        return Ok(resp);
    };
    match ctx.producer_ids.generate(&zk, ctx.broker_id).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            // Kafka answers this (retriable) error while no id block is available.
            warn!(error = %e, "could not claim a producer id block");
            resp.error_code = COORDINATOR_LOAD_IN_PROGRESS;
        }
    }
    Ok(resp)
}
