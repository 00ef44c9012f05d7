//! DeleteAcls (API 31), as Kafka 3.9's `AclApis.handleDeleteAcls`: needs ALTER on the
//! cluster (else CLUSTER_AUTHORIZATION_FAILED per filter); without an authorizer
//! SECURITY_DISABLED per filter. Each filter's answer lists the bindings it deleted
//! ([`Authorizer::delete_acls`]). As `DeleteAclsRequest` parses: v0 accepts only LITERAL and
//! ANY pattern types, and a filter with an UNKNOWN field closes the connection. A v0 answer
//! cannot carry non-literal bindings (Kafka fails to build it); Samsa leaves them out.
//!
//! [`Authorizer::delete_acls`]: crate::security::authorizer::Authorizer::delete_acls

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::{Error, Result};
use crate::security::authorizer::acl::{AclBindingFilter, PatternType};
use crate::security::authorizer::{Operation, ResourceType, CLUSTER_NAME};

fn all(n: usize, code: i16, msg: &'static str) -> DeleteAclsResponse {
    DeleteAclsResponse::default().with_filter_results(
        (0..n)
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_static_str(msg)))
            })
            .collect(),
    )
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DeleteAclsRequest,
) -> Result<DeleteAclsResponse> {
    let v = header.request_api_version;
    let filters: Vec<AclBindingFilter> = req
        .filters
        .iter()
        .map(|f| {
            AclBindingFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    if v == 0
        && req
            .filters
            .iter()
            .any(|f| f.pattern_type_filter != 3 && f.pattern_type_filter != 1)
    {
        return Err(Error::UnsupportedVersion(
            "Version 0 only supports literal resource pattern types".into(),
        ));
    }
    if filters.iter().any(AclBindingFilter::is_unknown) {
        return Err(Error::InvalidRequest(
            "Filters contain UNKNOWN elements".into(),
        ));
    }
    let n = filters.len();
    if !ctx.authorize(conn, Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        return Ok(all(
            n,
            E::ClusterAuthorizationFailed.code(),
            "Request DeleteAcls is not authorized.",
        ));
    }
    let authorizer = &ctx.security.authorizer;
    if !authorizer.is_enabled() {
        return Ok(all(
            n,
            E::SecurityDisabled.code(),
            "No Authorizer is configured.",
        ));
    }
    let Some(zk) = ctx.zk() else {
        return Ok(all(
            n,
            E::UnknownServerError.code(),
            "ZooKeeper session not available",
        ));
    };
    let deleted = authorizer.delete_acls(&zk, &filters).await;
    let results = deleted
        .into_iter()
        .map(|bindings| {
            DeleteAclsFilterResult::default().with_matching_acls(
                bindings
                    .into_iter()
                    .filter(|(b, _)| v > 0 || b.pattern.pattern_type == PatternType::Literal)
                    .map(|(b, err)| {
                        DeleteAclsMatchingAcl::default()
                            .with_error_code(if err.is_some() {
                                E::UnknownServerError.code()
                            } else {
                                0
                            })
                            .with_resource_type(b.pattern.resource_type.code())
                            .with_resource_name(StrBytes::from_string(b.pattern.name))
                            .with_pattern_type(b.pattern.pattern_type.code())
                            .with_principal(StrBytes::from_string(b.entry.principal))
                            .with_host(StrBytes::from_string(b.entry.host))
                            .with_operation(b.entry.operation.code())
                            .with_permission_type(b.entry.permission.code())
                    })
                    .collect(),
            )
        })
        .collect();
    Ok(DeleteAclsResponse::default().with_filter_results(results))
}
