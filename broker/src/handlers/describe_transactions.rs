//! DescribeTransactions (API 65, v0): state, producer id/epoch, timeout, start time and
//! partitions of each transactional id this broker coordinates (TRANSACTIONAL_ID_NOT_FOUND for
//! unknown ids, NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS per id).

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: DescribeTransactionsRequest,
) -> Result<DescribeTransactionsResponse> {
    crate::coordinator::txn::sync_partition_count(ctx);
    let mut resp = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        if !enforce::allow(
            ctx,
            conn,
            Operation::Describe,
            ResourceType::TransactionalId,
            &id,
        ) {
            let mut s = TransactionState::default();
            s.transactional_id = id;
            s.error_code = denied_error(ResourceType::TransactionalId).code();
            resp.transaction_states.push(s);
            continue;
        }
        let d = ctx.txns.describe(&id.0);
        let mut s = TransactionState::default();
        s.transactional_id = id;
        s.error_code = d.error;
        s.transaction_state = StrBytes::from_string(d.state);
        s.transaction_timeout_ms = d.timeout_ms;
        s.transaction_start_time_ms = d.start_ms;
        s.producer_id = ProducerId(d.producer_id);
        s.producer_epoch = d.producer_epoch;
        // Only the partitions of topics the principal may describe.
        for (topic, p) in d.partitions {
            if !enforce::allow(ctx, conn, Operation::Describe, ResourceType::Topic, &topic) {
                continue;
            }
            if s.topics.last().is_none_or(|t| t.topic.0.as_str() != topic) {
                let mut t = TopicData::default();
                t.topic = TopicName(StrBytes::from_string(topic));
                s.topics.push(t);
            }
            if let Some(t) = s.topics.last_mut() {
                t.partitions.push(p);
            }
        }
        resp.transaction_states.push(s);
    }
    Ok(resp)
}
