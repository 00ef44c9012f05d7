//! AddOffsetsToTxn (API 25, v0-4): adds the `__consumer_offsets` partition of the group to the
//! transaction (so its TxnOffsetCommit gets a marker). PRODUCER_FENCED is answered as
//! INVALID_PRODUCER_EPOCH below v2.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::txn::codes::{INVALID_PRODUCER_EPOCH, PRODUCER_FENCED};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// `__consumer_offsets` partition count: the existing topic's, else the configured one.
fn offsets_partitions(ctx: &BrokerContext) -> i32 {
    ctx.metadata_cache
        .snapshot()
        .topics
        .get("__consumer_offsets")
        .map(|t| t.partitions.len() as i32)
        .filter(|n| *n > 0)
        .unwrap_or(ctx.config.offsets_topic_num_partitions)
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: AddOffsetsToTxnRequest,
) -> Result<AddOffsetsToTxnResponse> {
    let mut resp = AddOffsetsToTxnResponse::default();
    let refused = if !enforce::allow(
        ctx,
        conn,
        Operation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(ResourceType::TransactionalId)
    } else if !enforce::allow(
        ctx,
        conn,
        Operation::Read,
        ResourceType::Group,
        &req.group_id,
    ) {
        Some(ResourceType::Group)
    } else {
        None
    };
    if let Some(rt) = refused {
        resp.error_code = denied_error(rt).code();
        return Ok(resp);
    }
    crate::coordinator::txn::sync_partition_count(ctx);
    let partition = crate::coordinator::partition_for(&req.group_id.0, offsets_partitions(ctx));
    let parts: BTreeSet<(String, i32)> = [("__consumer_offsets".to_string(), partition)].into();
    let code = ctx
        .txns
        .add_partitions(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            &parts,
        )
        .await;
    resp.error_code = if header.request_api_version < 2 && code == PRODUCER_FENCED {
        INVALID_PRODUCER_EPOCH
    } else {
        code
    };
    Ok(resp)
}
