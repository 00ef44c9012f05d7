//! CreateAcls (API 30), as Kafka 3.9's `AclApis.handleCreateAcls` with the ZooKeeper
//! `AclAuthorizer`: needs ALTER on the cluster; without an authorizer every creation gets
//! SECURITY_DISABLED. Validation, in Kafka's order:
//! - UNKNOWN (code 0) resource, pattern, operation or permission type: the request does not
//!   parse in Kafka, so the connection closes;
//! - ANY or MATCH where a concrete value is needed: the binding cannot be built, every
//!   creation gets UNKNOWN_SERVER_ERROR;
//! - per creation, INVALID_REQUEST: a CLUSTER name other than `kafka-cluster`, an empty name,
//!   an unknown code, a name containing `/`.
//!
//! The rest are written per resource pattern ([`Authorizer::create_acls`]).
//!
//! [`Authorizer::create_acls`]: crate::security::authorizer::Authorizer::create_acls

use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::{Error, Result};
use crate::security::authorizer::acl::{
    AclBinding, AclEntry, PatternType, Permission, ResourcePattern,
};
use crate::security::authorizer::{Operation, ResourceType, CLUSTER_NAME};

fn result(code: i16, msg: Option<String>) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(code)
        .with_error_message(msg.map(StrBytes::from_string))
}

fn all(n: usize, code: i16, msg: Option<&str>) -> CreateAclsResponse {
    CreateAclsResponse::default().with_results(
        (0..n)
            .map(|_| result(code, msg.map(str::to_string)))
            .collect(),
    )
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: CreateAclsRequest,
) -> Result<CreateAclsResponse> {
    let v = header.request_api_version;
    for c in &req.creations {
        if v == 0 && c.resource_pattern_type != PatternType::Literal.code() {
            return Err(Error::UnsupportedVersion(
                "Version 0 only supports literal resource pattern types".into(),
            ));
        }
        if [
            c.resource_pattern_type,
            c.resource_type,
            c.permission_type,
            c.operation,
        ]
        .contains(&0)
        {
            return Err(Error::InvalidRequest(
                "CreatableAcls contain unknown elements".into(),
            ));
        }
    }
    let n = req.creations.len();
    if !ctx.authorize(conn, Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        return Ok(all(
            n,
            E::ClusterAuthorizationFailed.code(),
            Some("Request CreateAcls is not authorized."),
        ));
    }
    let authorizer = &ctx.security.authorizer;
    if !authorizer.is_enabled() {
        return Ok(all(
            n,
            E::SecurityDisabled.code(),
            Some("No Authorizer is configured."),
        ));
    }
    // ResourcePattern / AccessControlEntry refuse ANY and MATCH.
    if req.creations.iter().any(|c| {
        c.resource_type == 1
            || c.resource_pattern_type == 1
            || c.resource_pattern_type == 2
            || c.operation == 1
            || c.permission_type == 1
    }) {
        return Ok(all(n, E::UnknownServerError.code(), None));
    }
    let mut results: Vec<Option<AclCreationResult>> = vec![None; n];
    let mut valid: Vec<(usize, AclBinding)> = Vec::new();
    for (i, c) in req.creations.iter().enumerate() {
        let name = c.resource_name.as_str();
        let invalid = |m: &str| Some(result(E::InvalidRequest.code(), Some(m.to_string())));
        let rt = ResourceType::from_code(c.resource_type);
        if rt == Some(ResourceType::Cluster) && name != CLUSTER_NAME {
            results[i] = invalid(&format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
            continue;
        }
        if name.is_empty() {
            results[i] = invalid("Invalid empty resource name");
            continue;
        }
        let pt = match c.resource_pattern_type {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        };
        let (Some(rt), Some(pt), Some(op), Some(perm)) = (
            rt,
            pt,
            Operation::from_code(c.operation),
            Permission::from_code(c.permission_type),
        ) else {
            results[i] = invalid("Failed to create ACL");
            continue;
        };
        if name.contains('/') {
            results[i] = invalid("Failed to create ACL");
            continue;
        }
        valid.push((
            i,
            AclBinding {
                pattern: ResourcePattern::new(rt, name, pt),
                entry: AclEntry {
                    principal: c.principal.to_string(),
                    host: c.host.to_string(),
                    operation: op,
                    permission: perm,
                },
            },
        ));
    }
    if !valid.is_empty() {
        let bindings: Vec<AclBinding> = valid.iter().map(|(_, b)| b.clone()).collect();
        let written = match ctx.zk() {
            Some(zk) => authorizer.create_acls(&zk, &bindings).await,
            None => vec![Err("ZooKeeper session not available".to_string()); bindings.len()],
        };
        for ((i, _), r) in valid.iter().zip(written) {
            results[*i] = Some(match r {
                Ok(()) => result(0, None),
                Err(_) => result(E::UnknownServerError.code(), None),
            });
        }
    }
    Ok(CreateAclsResponse::default().with_results(
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| result(0, None)))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use samsa_common::config::BrokerConfig;

    fn ctx(authorizer: bool) -> Arc<BrokerContext> {
        let mut p = std::collections::HashMap::from([(
            "zookeeper.connect".to_string(),
            "unused:1".to_string(),
        )]);
        if authorizer {
            p.insert(
                "authorizer.class.name".into(),
                "kafka.security.authorizer.AclAuthorizer".into(),
            );
            p.insert("super.users".into(), "User:admin".into());
        }
        let cfg = Arc::new(BrokerConfig::from_props(&p).expect("cfg"));
        let mut c = BrokerContext::new(cfg.clone(), Vec::new());
        c.security.authorizer =
            crate::security::authorizer::Authorizer::from_config(cfg.authorizer.as_ref());
        Arc::new(c)
    }

    fn conn(principal: &str) -> ConnInfo {
        let a: std::net::SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let mut c = ConnInfo::anonymous(Arc::from("PLAINTEXT"), a, a);
        c.principal = Arc::from(principal);
        c
    }

    fn header(v: i16) -> RequestHeader {
        RequestHeader::default().with_request_api_version(v)
    }

    fn creation(rt: i8, name: &str, pt: i8, principal: &str, op: i8, perm: i8) -> AclCreation {
        AclCreation::default()
            .with_resource_type(rt)
            .with_resource_name(StrBytes::from_string(name.into()))
            .with_resource_pattern_type(pt)
            .with_principal(StrBytes::from_string(principal.into()))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(op)
            .with_permission_type(perm)
    }

    fn codes(r: &CreateAclsResponse) -> Vec<i16> {
        r.results.iter().map(|r| r.error_code).collect()
    }

    #[tokio::test]
    async fn validation_and_errors_as_kafka() {
        let ok = creation(2, "t", 3, "User:a", 3, 3);
        let req = CreateAclsRequest::default().with_creations(vec![ok.clone(), ok.clone()]);
        // No authorizer: SECURITY_DISABLED for each creation.
        let r = handle(
            &ctx(false),
            &conn("User:ANONYMOUS"),
            &header(3),
            req.clone(),
        )
        .await
        .expect("answer");
        assert_eq!(codes(&r), [54, 54]);
        // A principal without ALTER on the cluster.
        let on = ctx(true);
        let r = handle(&on, &conn("User:bob"), &header(3), req)
            .await
            .expect("answer");
        assert_eq!(codes(&r), [31, 31]);
        // UNKNOWN codes: Kafka's request does not parse; the connection closes.
        let bad =
            CreateAclsRequest::default().with_creations(vec![creation(0, "t", 3, "User:a", 3, 3)]);
        assert!(handle(&on, &conn("User:admin"), &header(3), bad)
            .await
            .is_err());
        // ANY where a concrete value is needed: every creation UNKNOWN_SERVER_ERROR.
        let any = CreateAclsRequest::default()
            .with_creations(vec![ok.clone(), creation(2, "t", 1, "User:a", 3, 3)]);
        let r = handle(&on, &conn("User:admin"), &header(3), any)
            .await
            .expect("answer");
        assert_eq!(codes(&r), [-1, -1]);
        // Per creation INVALID_REQUEST; without ZooKeeper the valid one fails to write.
        let mixed = CreateAclsRequest::default().with_creations(vec![
            creation(4, "other", 3, "User:a", 7, 3),
            creation(2, "", 3, "User:a", 3, 3),
            creation(2, "a/b", 3, "User:a", 3, 3),
            creation(99, "t", 3, "User:a", 3, 3),
            ok,
        ]);
        let r = handle(&on, &conn("User:admin"), &header(3), mixed)
            .await
            .expect("answer");
        assert_eq!(codes(&r), [42, 42, 42, 42, -1]);
        assert_eq!(
            r.results[0].error_message.as_deref(),
            Some("The only valid name for the CLUSTER resource is kafka-cluster")
        );
        assert_eq!(
            r.results[1].error_message.as_deref(),
            Some("Invalid empty resource name")
        );
    }
}
