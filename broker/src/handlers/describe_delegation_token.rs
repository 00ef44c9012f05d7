//! DescribeDelegationToken (API 41), as `KafkaApis.handleDescribeTokensRequest`, from the
//! broker's token cache (no ZooKeeper read).
//!
//! DELEGATION_TOKEN_REQUEST_NOT_ALLOWED on a channel that may not use tokens, then
//! DELEGATION_TOKEN_AUTH_DISABLED. An empty owner list answers no tokens; a null one means
//! every owner. A token is listed when it matches the owner filter (one of the given
//! principals is its owner, requester or a renewer) and the requester is its owner,
//! requester or renewer, or may DESCRIBE the DELEGATION_TOKEN resource (the token id), or
//! may DESCRIBE_TOKENS on the USER resource of the owner. The HMAC is part of the answer,
//! as in Kafka; v3 adds the token requester.

use std::sync::Arc;

use kafka_protocol::messages::describe_delegation_token_response::{
    DescribedDelegationToken, DescribedDelegationTokenRenewer,
};
use kafka_protocol::messages::{
    DescribeDelegationTokenRequest, DescribeDelegationTokenResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::zk::delegation_token::Principal;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{Operation, ResourceType};
use crate::security::tokens::{allow_token_requests, code, conn_principal};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DescribeDelegationTokenRequest,
) -> Result<DescribeDelegationTokenResponse> {
    let v = header.request_api_version;
    let mut resp = DescribeDelegationTokenResponse::default();
    if !allow_token_requests(conn) {
        resp.error_code = code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED;
        return Ok(resp);
    }
    let tokens = &ctx.security.tokens;
    if !tokens.settings.enabled() {
        resp.error_code = code::DELEGATION_TOKEN_AUTH_DISABLED;
        return Ok(resp);
    }
    let owners: Option<Vec<Principal>> = req.owners.map(|o| {
        o.iter()
            .map(|p| Principal::new(p.principal_type.to_string(), p.principal_name.to_string()))
            .collect()
    });
    if owners.as_ref().is_some_and(Vec::is_empty) {
        return Ok(resp);
    }
    let me = conn_principal(conn);
    let mut list = tokens.cache.all();
    list.sort_by_key(|(t, _)| t.issue_timestamp);
    for (t, hmac) in list {
        if let Some(owners) = &owners {
            if !owners.iter().any(|o| t.owner_or_renewer(o)) {
                continue;
            }
        }
        let visible = t.owner_or_renewer(&me)
            || ctx.authorize(
                conn,
                Operation::Describe,
                ResourceType::DelegationToken,
                &t.token_id,
            )
            || ctx.authorize(
                conn,
                Operation::DescribeTokens,
                ResourceType::User,
                &t.owner.to_string(),
            );
        if !visible {
            continue;
        }
        let mut d = DescribedDelegationToken::default()
            .with_principal_type(s(&t.owner.principal_type))
            .with_principal_name(s(&t.owner.name))
            .with_issue_timestamp(t.issue_timestamp)
            .with_expiry_timestamp(t.expiry_timestamp)
            .with_max_timestamp(t.max_timestamp)
            .with_token_id(s(&t.token_id))
            .with_hmac(hmac.into())
            .with_renewers(
                t.renewers
                    .iter()
                    .map(|r| {
                        DescribedDelegationTokenRenewer::default()
                            .with_principal_type(s(&r.principal_type))
                            .with_principal_name(s(&r.name))
                    })
                    .collect(),
            );
        if v > 2 {
            d = d
                .with_token_requester_principal_type(s(&t.token_requester.principal_type))
                .with_token_requester_principal_name(s(&t.token_requester.name));
        }
        resp.tokens.push(d);
    }
    Ok(resp)
}
