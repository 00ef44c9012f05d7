//! DescribeUserScramCredentials (API 50), as a 3.9 ZooKeeper broker answers it
//! (`ZkAdminManager.describeUserScramCredentials`): read from `/config/users`, mechanisms
//! and iterations only (never salts or keys). No user list = every user with a credential,
//! sorted; an empty name → RESOURCE_NOT_FOUND, a name given twice → DUPLICATE_RESOURCE,
//! a user without credentials → RESOURCE_NOT_FOUND. Admin path: it reads ZooKeeper as Kafka
//! does, so an answer right after AlterUserScramCredentials is current.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::security::scram::{ScramCredential, ScramMechanism};
use samsa_common::zk::admin::code;
use samsa_common::zk::znodes::{
    config_type, desanitize_entity_name, sanitize_entity_name, ConfigEntityTypeZNode,
};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const UNKNOWN_SERVER_ERROR: i16 = -1;

/// Credential infos of one user's config; empty when it has none.
fn infos(config: &BTreeMap<String, String>) -> Vec<CredentialInfo> {
    ScramMechanism::ALL
        .iter()
        .filter_map(|m| {
            let c = ScramCredential::parse_kafka_string(config.get(m.name())?)?;
            Some(
                CredentialInfo::default()
                    .with_mechanism(m.type_code())
                    .with_iterations(c.iterations as i32),
            )
        })
        .collect()
}

fn result(user: &str, code: i16, msg: Option<String>) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_error_code(code)
        .with_error_message(msg.map(StrBytes::from_string))
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: DescribeUserScramCredentialsRequest,
) -> Result<DescribeUserScramCredentialsResponse> {
    let mut resp = DescribeUserScramCredentialsResponse::default();
    if !enforce::cluster(ctx, conn, Operation::Describe) {
        // Kafka's `getErrorResponse`: the error at the top and once per requested user
        // (without the name).
        let code = denied_error(ResourceType::Cluster).code();
        let msg = enforce::denied_message(ResourceType::Cluster);
        resp.error_code = code;
        resp.error_message = Some(StrBytes::from_static_str(msg));
        for _ in req.users.iter().flatten() {
            resp.results.push(
                DescribeUserScramCredentialsResult::default()
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_static_str(msg))),
            );
        }
        return Ok(resp);
    }
    let Some(zk) = ctx.zk() else {
        resp.error_code = UNKNOWN_SERVER_ERROR;
        resp.error_message = Some(StrBytes::from_static_str("ZooKeeper session not available"));
        return Ok(resp);
    };
    let wanted: Option<Vec<String>> = req
        .users
        .map(|u| u.iter().map(|u| u.name.to_string()).collect())
        .filter(|u: &Vec<String>| !u.is_empty());
    match wanted {
        None => {
            let children = match zk
                .children(&ConfigEntityTypeZNode::path(config_type::USER))
                .await
            {
                Ok(c) => c.unwrap_or_default(),
                Err(e) => {
                    resp.error_code = UNKNOWN_SERVER_ERROR;
                    resp.error_message = Some(StrBytes::from_string(e.to_string()));
                    return Ok(resp);
                }
            };
            let mut users = BTreeMap::new();
            for child in children {
                let config = zk
                    .get_entity_config(config_type::USER, &child)
                    .await
                    .unwrap_or_default();
                let found = infos(&config);
                if !found.is_empty() {
                    let name = desanitize_entity_name(&child).unwrap_or(child);
                    users.insert(name, found);
                }
            }
            for (user, found) in users {
                resp.results
                    .push(result(&user, code::NONE, None).with_credential_infos(found));
            }
        }
        Some(users) => {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for u in &users {
                *counts.entry(u.as_str()).or_default() += 1;
            }
            let mut seen = std::collections::HashSet::new();
            for user in &users {
                if !seen.insert(user.clone()) {
                    continue;
                }
                let r = if user.is_empty() {
                    result(
                        user,
                        code::RESOURCE_NOT_FOUND,
                        Some("Username must not be empty".into()),
                    )
                } else if counts[user.as_str()] > 1 {
                    result(
                        user,
                        code::DUPLICATE_RESOURCE,
                        Some(format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                        )),
                    )
                } else {
                    match zk
                        .get_entity_config(config_type::USER, &sanitize_entity_name(user))
                        .await
                    {
                        Ok(config) => {
                            let found = infos(&config);
                            if found.is_empty() {
                                result(
                                    user,
                                    code::RESOURCE_NOT_FOUND,
                                    Some(format!(
                                        "Attempt to describe nonexistent SCRAM credential for user {user}"
                                    )),
                                )
                            } else {
                                result(user, code::NONE, None).with_credential_infos(found)
                            }
                        }
                        Err(e) => result(user, UNKNOWN_SERVER_ERROR, Some(e.to_string())),
                    }
                };
                resp.results.push(r);
            }
        }
    }
    Ok(resp)
}
