//! DescribeCluster (key 60), v0-v1: cluster id, controller and the live brokers'
//! endpoints on the listener the client used (Kafka `KafkaApis.handleDescribeCluster`,
//! ZooKeeper mode). A ZK broker only serves `endpoint_type` BROKER (1).

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId as KBrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::enforce;

const UNSUPPORTED_ENDPOINT_TYPE: i16 = 119;
const ENDPOINT_TYPE_BROKER: i8 = 1;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: DescribeClusterRequest,
) -> Result<DescribeClusterResponse> {
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = ENDPOINT_TYPE_BROKER;
    if header.request_api_version >= 1 && req.endpoint_type != ENDPOINT_TYPE_BROKER {
        resp.error_code = UNSUPPORTED_ENDPOINT_TYPE;
        resp.error_message = Some(StrBytes::from_static_str(
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
        ));
        return Ok(resp);
    }
    let snap = ctx.metadata_cache.snapshot();
    let listener: &str = &conn.listener;
    resp.brokers = snap
        .brokers
        .values()
        .filter_map(|b| {
            let ep = b.endpoints.get(listener)?;
            let mut rb = DescribeClusterBroker::default();
            rb.broker_id = KBrokerId(b.id);
            rb.host = StrBytes::from_string(ep.host.clone());
            rb.port = ep.port;
            rb.rack = b.rack.clone().map(StrBytes::from_string);
            Some(rb)
        })
        .collect();
    resp.cluster_id = StrBytes::from_string(ctx.cluster_id().unwrap_or_default());
    resp.controller_id = KBrokerId(snap.controller_id.unwrap_or(-1));
    resp.cluster_authorized_operations = if req.include_cluster_authorized_operations {
        enforce::cluster_operations(ctx, conn)
    } else {
        i32::MIN
    };
    Ok(resp)
}
