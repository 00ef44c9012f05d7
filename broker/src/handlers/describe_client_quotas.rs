//! DescribeClientQuotas (API 48) as a 3.9 ZooKeeper broker answers it: DESCRIBE_CONFIGS on
//! the cluster is required (CLUSTER_AUTHORIZATION_FAILED otherwise), then the quotas are
//! read from ZooKeeper by `crate::quota::admin::describe`. Any broker answers. A failure
//! fails the whole request: top-level error code and message, `entries` null.

use std::sync::Arc;

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::quota::admin::{self, Component, Match, QuotaError};
use crate::security::authorizer::{enforce, Operation};

const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const MATCH_TYPE_EXACT: i8 = 0;
const MATCH_TYPE_DEFAULT: i8 = 1;
const MATCH_TYPE_SPECIFIED: i8 = 2;

/// Kafka's `DescribeClientQuotasRequest.filter()`: an unknown match type or an exact match
/// without a name are exceptions there, hence UNKNOWN_SERVER_ERROR.
fn components(
    req: &DescribeClientQuotasRequest,
) -> std::result::Result<Vec<Component>, QuotaError> {
    req.components
        .iter()
        .map(|c| {
            let matching = match (c.match_type, &c._match) {
                (MATCH_TYPE_EXACT, Some(n)) => Match::Exact(n.to_string()),
                (MATCH_TYPE_DEFAULT, _) => Match::Default,
                (MATCH_TYPE_SPECIFIED, _) => Match::Specified,
                _ => return Err(QuotaError::unknown()),
            };
            Ok(Component {
                entity_type: c.entity_type.to_string(),
                matching,
            })
        })
        .collect()
}

fn failed(e: QuotaError) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(e.code)
        .with_error_message(e.message.map(StrBytes::from_string))
        .with_entries(None)
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: DescribeClientQuotasRequest,
) -> Result<DescribeClientQuotasResponse> {
    if !enforce::cluster(ctx, conn, Operation::DescribeConfigs) {
        return Ok(failed(QuotaError {
            code: CLUSTER_AUTHORIZATION_FAILED,
            message: None,
        }));
    }
    let Some(zk) = ctx.zk() else {
        return Ok(failed(QuotaError::unknown()));
    };
    let found = match components(&req) {
        Ok(c) => admin::describe(&zk, &c, req.strict).await,
        Err(e) => Err(e),
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => return Ok(failed(e)),
    };
    let entries = found
        .into_iter()
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .into_iter()
                        .map(|(t, n)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_string(t))
                                .with_entity_name(n.map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(k, v)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(k))
                                .with_value(v)
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(DescribeClientQuotasResponse::default().with_entries(Some(entries)))
}
