//! DescribeAcls (API 29), as Kafka 3.9's `AclApis.handleDescribeAcls`: needs DESCRIBE on the
//! cluster (else CLUSTER_AUTHORIZATION_FAILED); without an authorizer SECURITY_DISABLED.
//! Answered from the ACL cache with `AclBindingFilter` semantics, grouped by resource pattern.
//! As `DescribeAclsRequest` parses: v0 turns an ANY pattern type into LITERAL and refuses
//! others; a UNKNOWN (code 0) field closes the connection (Kafka's request does not parse).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::{Error, Result};
use crate::security::authorizer::acl::{AclBindingFilter, ResourcePattern};
use crate::security::authorizer::{Operation, ResourceType, CLUSTER_NAME};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DescribeAclsRequest,
) -> Result<DescribeAclsResponse> {
    let mut pattern_type = req.pattern_type_filter;
    if header.request_api_version == 0 {
        if pattern_type == 1 {
            pattern_type = 3;
        } else if pattern_type != 3 {
            return Err(Error::UnsupportedVersion(
                "Version 0 only supports literal resource pattern types".into(),
            ));
        }
    }
    if [
        pattern_type,
        req.resource_type_filter,
        req.permission_type,
        req.operation,
    ]
    .contains(&0)
    {
        return Err(Error::InvalidRequest(
            "DescribeAclsRequest contains UNKNOWN elements".into(),
        ));
    }
    let mut resp = DescribeAclsResponse::default();
    if !ctx.authorize(
        conn,
        Operation::Describe,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        resp.error_code = E::ClusterAuthorizationFailed.code();
        resp.error_message = Some(StrBytes::from_static_str(
            "Request DescribeAcls is not authorized.",
        ));
        return Ok(resp);
    }
    let authorizer = &ctx.security.authorizer;
    if !authorizer.is_enabled() {
        resp.error_code = E::SecurityDisabled.code();
        resp.error_message = Some(StrBytes::from_static_str(
            "No Authorizer is configured on the broker",
        ));
        return Ok(resp);
    }
    let filter = AclBindingFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        pattern_type,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    );
    let mut grouped: BTreeMap<ResourcePattern, Vec<AclDescription>> = BTreeMap::new();
    for b in authorizer.snapshot().acls(&filter) {
        grouped.entry(b.pattern).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(b.entry.principal))
                .with_host(StrBytes::from_string(b.entry.host))
                .with_operation(b.entry.operation.code())
                .with_permission_type(b.entry.permission.code()),
        );
    }
    resp.resources = grouped
        .into_iter()
        .map(|(p, acls)| {
            DescribeAclsResource::default()
                .with_resource_type(p.resource_type.code())
                .with_resource_name(StrBytes::from_string(p.name))
                .with_pattern_type(p.pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsa_common::config::BrokerConfig;

    #[tokio::test]
    async fn v0_any_is_literal_and_unknown_closes() {
        let p = std::collections::HashMap::from([
            ("zookeeper.connect".to_string(), "unused:1".to_string()),
            (
                "authorizer.class.name".to_string(),
                "kafka.security.authorizer.AclAuthorizer".to_string(),
            ),
        ]);
        let cfg = Arc::new(BrokerConfig::from_props(&p).expect("cfg"));
        let mut c = BrokerContext::new(cfg.clone(), Vec::new());
        c.security.authorizer =
            crate::security::authorizer::Authorizer::from_config(cfg.authorizer.as_ref());
        let ctx = Arc::new(c);
        let a: std::net::SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let conn = ConnInfo::anonymous(Arc::from("PLAINTEXT"), a, a);
        let h = |v: i16| RequestHeader::default().with_request_api_version(v);
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(1)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1);
        // Not a super user, no ACLs: CLUSTER_AUTHORIZATION_FAILED.
        let r = handle(&ctx, &conn, &h(0), req.clone())
            .await
            .expect("v0 ANY");
        assert_eq!(r.error_code, 31);
        let prefixed = req.clone().with_pattern_type_filter(4);
        assert!(handle(&ctx, &conn, &h(0), prefixed.clone()).await.is_err());
        assert_eq!(
            handle(&ctx, &conn, &h(1), prefixed)
                .await
                .expect("v1")
                .error_code,
            31
        );
        assert!(handle(&ctx, &conn, &h(3), req.with_operation(0))
            .await
            .is_err());
    }
}
