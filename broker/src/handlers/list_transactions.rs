//! ListTransactions (API 66, v0-1): the transactions this broker coordinates, filtered by state
//! names (unknown names are echoed in `UnknownStateFilters`), producer ids and (v1) a minimum
//! running duration. COORDINATOR_LOAD_IN_PROGRESS while any partition loads.

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, RequestHeader, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: ListTransactionsRequest,
) -> Result<ListTransactionsResponse> {
    crate::coordinator::txn::sync_partition_count(ctx);
    let states: Vec<String> = req.state_filters.iter().map(|s| s.to_string()).collect();
    let pids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let duration = if header.request_api_version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let (code, unknown, listed) = ctx.txns.list(&states, &pids, duration);
    let mut resp = ListTransactionsResponse::default();
    resp.error_code = code;
    resp.unknown_state_filters = unknown.into_iter().map(StrBytes::from_string).collect();
    for (id, pid, state) in listed {
        if !enforce::allow(
            ctx,
            conn,
            Operation::Describe,
            ResourceType::TransactionalId,
            &id,
        ) {
            continue;
        }
        let mut s = TransactionState::default();
        s.transactional_id = TransactionalId(StrBytes::from_string(id));
        s.producer_id = ProducerId(pid);
        s.transaction_state = StrBytes::from_static_str(state);
        resp.transaction_states.push(s);
    }
    Ok(resp)
}
