//! The one match on `ApiKey`, and the version table ApiVersions is built from.
//!
//! Adding an API (one line each):
//! 1. add its key to [`IMPLEMENTED`];
//! 2. add an arm to the match in [`dispatch`]:
//!    `ApiKey::X => respond(&header, handlers::x::handle(ctx, conn, &header, decode(&mut body, v)?).await?),`
//!    Handler shape: `pub async fn handle(ctx: &Arc<BrokerContext>, header: &RequestHeader,
//!    req: XRequest) -> Result<XResponse>`; handlers that need the client's listener also take
//!    `conn: &ConnInfo`. A handler that encodes its own body (Fetch, for zero-copy) returns
//!    `Vec<Chunk>` of the *body* and the arm calls [`respond_chunks`].
//!
//! Versions advertised are exactly those of a Kafka 3.9 broker in ZooKeeper mode
//! (`ApiKeys.apisForListener(ZK_BROKER)` with stable versions only), restricted to the
//! APIs we implement. A request whose version is outside the range closes the
//! connection, as Kafka's `SocketServer.parseRequestHeader` does; ApiVersions is the
//! exception (KIP-511: any version is accepted, unknown ones get a v0 answer).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::broker::BrokerContext;
use crate::connection::{Chunk, ConnInfo, RequestHandler};
use crate::error::{Error, Result};
use crate::handlers;

/// APIs this broker answers. ApiVersions advertises exactly these.
pub const IMPLEMENTED: &[ApiKey] = &[
    ApiKey::ControlledShutdown,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::AlterPartition,
    ApiKey::AllocateProducerIds,
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::UpdateMetadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::DeleteRecords,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::DescribeLogDirs,
    ApiKey::AlterReplicaLogDirs,
    ApiKey::LeaderAndIsr,
    ApiKey::StopReplica,
    ApiKey::InitProducerId,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterUserScramCredentials,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
    ApiKey::WriteTxnMarkers,
    ApiKey::TxnOffsetCommit,
    ApiKey::DescribeProducers,
    ApiKey::CreateDelegationToken,
    ApiKey::RenewDelegationToken,
    ApiKey::ExpireDelegationToken,
    ApiKey::DescribeDelegationToken,
    ApiKey::DescribeClientQuotas,
    ApiKey::AlterClientQuotas,
];

/// Version range (min, max) a Kafka 3.9 ZooKeeper-mode broker advertises for `key`,
/// or `None` if a ZK broker does not serve it. From the 3.9.0 message schemas
/// (`validVersions`, `listeners` containing `zkBroker`, no unstable last versions).
pub const fn kafka_zk_versions(key: ApiKey) -> Option<(i16, i16)> {
    use ApiKey::*;
    Some(match key {
        Produce => (0, 11),
        Fetch => (0, 17),
        ListOffsets => (0, 9),
        Metadata => (0, 12),
        LeaderAndIsr => (0, 7),
        StopReplica => (0, 4),
        UpdateMetadata => (0, 8),
        ControlledShutdown => (0, 3),
        OffsetCommit => (0, 9),
        OffsetFetch => (0, 9),
        FindCoordinator => (0, 6),
        JoinGroup => (0, 9),
        Heartbeat => (0, 4),
        LeaveGroup => (0, 5),
        SyncGroup => (0, 5),
        DescribeGroups => (0, 5),
        ListGroups => (0, 5),
        SaslHandshake => (0, 1),
        ApiVersions => (0, 4),
        CreateTopics => (0, 7),
        DeleteTopics => (0, 6),
        DeleteRecords => (0, 2),
        InitProducerId => (0, 5),
        OffsetForLeaderEpoch => (0, 4),
        AddPartitionsToTxn => (0, 5),
        AddOffsetsToTxn => (0, 4),
        EndTxn => (0, 4),
        WriteTxnMarkers => (0, 1),
        TxnOffsetCommit => (0, 4),
        DescribeAcls => (0, 3),
        CreateAcls => (0, 3),
        DeleteAcls => (0, 3),
        DescribeConfigs => (0, 4),
        AlterConfigs => (0, 2),
        AlterReplicaLogDirs => (0, 2),
        DescribeLogDirs => (0, 4),
        SaslAuthenticate => (0, 2),
        CreatePartitions => (0, 3),
        CreateDelegationToken => (0, 3),
        RenewDelegationToken => (0, 2),
        ExpireDelegationToken => (0, 2),
        DescribeDelegationToken => (0, 3),
        DeleteGroups => (0, 2),
        ElectLeaders => (0, 2),
        IncrementalAlterConfigs => (0, 1),
        AlterPartitionReassignments => (0, 0),
        ListPartitionReassignments => (0, 0),
        OffsetDelete => (0, 0),
        DescribeClientQuotas => (0, 1),
        AlterClientQuotas => (0, 1),
        DescribeUserScramCredentials => (0, 0),
        AlterUserScramCredentials => (0, 0),
        AlterPartition => (0, 3),
        UpdateFeatures => (0, 1),
        Envelope => (0, 0),
        DescribeCluster => (0, 1),
        DescribeProducers => (0, 0),
        DescribeTransactions => (0, 0),
        ListTransactions => (0, 1),
        AllocateProducerIds => (0, 0),
        ConsumerGroupHeartbeat => (0, 0),
        ConsumerGroupDescribe => (0, 0),
        _ => return None,
    })
}

/// The advertised range for `key` if we implement it.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    if IMPLEMENTED.contains(&key) {
        kafka_zk_versions(key)
    } else {
        None
    }
}

/// `(api_key, min, max)` for every implemented API, ordered by key (ApiVersions body).
pub fn version_table() -> Vec<(i16, i16, i16)> {
    let mut v: Vec<(i16, i16, i16)> = IMPLEMENTED
        .iter()
        .filter_map(|k| kafka_zk_versions(*k).map(|(lo, hi)| (*k as i16, lo, hi)))
        .collect();
    v.sort_unstable();
    v
}

/// Decodes a request body at `version`; a malformed body closes the connection.
pub fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T> {
    T::decode(body, version).map_err(|e| Error::InvalidRequest(format!("malformed request: {e}")))
}

/// Encodes the response header and `resp` at the request's version.
pub fn respond<R: Encodable + HeaderVersion>(
    header: &RequestHeader,
    resp: R,
) -> Result<Option<Vec<Chunk>>> {
    let v = header.request_api_version;
    let mut buf = BytesMut::new();
    encode_response_header(&mut buf, header.correlation_id, R::header_version(v))?;
    resp.encode(&mut buf, v)
        .map_err(|e| Error::Internal(format!("encoding response: {e}")))?;
    Ok(Some(vec![Chunk::Bytes(buf.freeze())]))
}

/// Prepends the response header to a body the handler encoded itself.
pub fn respond_chunks<R: HeaderVersion>(
    header: &RequestHeader,
    mut body: Vec<Chunk>,
) -> Result<Option<Vec<Chunk>>> {
    let mut buf = BytesMut::new();
    encode_response_header(
        &mut buf,
        header.correlation_id,
        R::header_version(header.request_api_version),
    )?;
    body.insert(0, Chunk::Bytes(buf.freeze()));
    Ok(Some(body))
}

fn encode_response_header(buf: &mut BytesMut, correlation_id: i32, version: i16) -> Result<()> {
    let mut h = ResponseHeader::default();
    h.correlation_id = correlation_id;
    h.encode(buf, version)
        .map_err(|e| Error::Internal(format!("encoding response header: {e}")))
}

/// Bytes a request takes on the wire without its size prefix (Kafka's
/// `RequestChannel.Request.sizeInBytes`): header plus body.
fn request_size(header: &RequestHeader, body_len: usize) -> usize {
    let hv = ApiKey::try_from(header.request_api_key)
        .map(|k| k.request_header_version(header.request_api_version))
        .unwrap_or(1);
    header.compute_size(hv).unwrap_or(0) + body_len
}

/// The user a quota is charged to: the principal's name (`User:alice` → `alice`).
pub(crate) fn user_of(conn: &ConnInfo) -> &str {
    conn.principal
        .split_once(':')
        .map_or(&*conn.principal, |(_, n)| n)
}

pub(crate) fn client_of(header: &RequestHeader) -> &str {
    header.client_id.as_deref().unwrap_or("")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Records `value` against the client's quota; a throttle time mutes the connection after
/// the response (the connection reads [`ConnInfo::throttle`]).
fn charge(
    quotas: &crate::quota::client::ClientQuotaManager,
    conn: &ConnInfo,
    header: &RequestHeader,
    value: f64,
) -> u64 {
    if !quotas.enabled() {
        return 0;
    }
    let t = quotas.record(user_of(conn), client_of(header), value, now_ms());
    conn.throttle.set(t);
    t
}

fn throttle_field(ms: u64) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// Routes one request to its handler.
pub async fn dispatch(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: RequestHeader,
    mut body: Bytes,
) -> Result<Option<Vec<Chunk>>> {
    let key = ApiKey::try_from(header.request_api_key).map_err(|_| {
        Error::InvalidRequest(format!("unknown api key {}", header.request_api_key))
    })?;
    let v = header.request_api_version;
    if key == ApiKey::ApiVersions {
        return handlers::api_versions::handle(&header, &mut body);
    }
    match supported_versions(key) {
        Some((lo, hi)) if v >= lo && v <= hi => {}
        _ => {
            return Err(Error::UnsupportedVersion(format!(
                "{key:?} v{v} is not enabled on this broker"
            )))
        }
    }
    match key {
        ApiKey::Metadata => {
            handlers::metadata::respond(ctx, conn, &header, decode(&mut body, v)?).await
        }
        ApiKey::UpdateMetadata => respond(
            &header,
            handlers::update_metadata::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::Produce => {
            let size = request_size(&header, body.len());
            let req = decode(&mut body, v)?;
            let resp = handlers::produce::handle(ctx, conn, &header, req).await?;
            // Kafka charges the whole request once the append is done, acks=0 included.
            let throttle = charge(&ctx.quotas.produce, conn, &header, size as f64);
            match resp {
                Some(mut resp) => {
                    resp.throttle_time_ms = throttle_field(throttle);
                    respond(&header, resp)
                }
                None => Ok(None),
            }
        }
        ApiKey::Fetch => {
            let mut req: kafka_protocol::messages::FetchRequest = decode(&mut body, v)?;
            let quotas = &ctx.quotas.fetch;
            let consumer = handlers::fetch::replica_id_of(&req, v) < 0;
            if consumer {
                // Never fetch more than the quota lets through in one window.
                if let Some(max) = quotas.max_value_in_window(user_of(conn), client_of(&header)) {
                    let max = max.min(f64::from(i32::MAX)) as i32;
                    req.max_bytes = req.max_bytes.min(max);
                    req.min_bytes = req.min_bytes.min(req.max_bytes);
                }
            }
            let incremental_session = (req.session_epoch > 0).then_some(req.session_id);
            let chunks = handlers::fetch::handle(ctx, conn, &header, req).await?;
            if !consumer || !quotas.enabled() {
                return respond_chunks::<kafka_protocol::messages::FetchResponse>(&header, chunks);
            }
            let size: usize = chunks.iter().map(Chunk::len).sum();
            let throttle = charge(quotas, conn, &header, size as f64);
            if throttle == 0 {
                return respond_chunks::<kafka_protocol::messages::FetchResponse>(&header, chunks);
            }
            // A throttled fetch returns no data, and its bytes do not count.
            quotas.unrecord(user_of(conn), client_of(&header), size as f64, now_ms());
            let empty = handlers::fetch::throttled_response(
                v,
                throttle_field(throttle),
                incremental_session.unwrap_or(0),
            );
            respond_chunks::<kafka_protocol::messages::FetchResponse>(&header, empty)
        }
        ApiKey::ListOffsets => respond(
            &header,
            handlers::list_offsets::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DeleteRecords => respond(
            &header,
            handlers::delete_records::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::OffsetForLeaderEpoch => respond(
            &header,
            handlers::offset_for_leader_epoch::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::AlterReplicaLogDirs => respond(
            &header,
            handlers::alter_replica_log_dirs::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::DescribeLogDirs => respond(
            &header,
            handlers::describe_log_dirs::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::LeaderAndIsr => respond(
            &header,
            handlers::leader_and_isr::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::StopReplica => respond(
            &header,
            handlers::stop_replica::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::InitProducerId => respond(
            &header,
            handlers::init_producer_id::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DescribeConfigs => respond(
            &header,
            handlers::describe_configs::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::AlterConfigs => respond(
            &header,
            handlers::alter_configs::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::IncrementalAlterConfigs => respond(
            &header,
            handlers::incremental_alter_configs::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::DescribeCluster => respond(
            &header,
            handlers::describe_cluster::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::ControlledShutdown => respond(
            &header,
            handlers::controlled_shutdown::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::ElectLeaders => respond(
            &header,
            handlers::elect_leaders::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::AlterPartitionReassignments => respond(
            &header,
            handlers::alter_partition_reassignments::handle(
                ctx,
                conn,
                &header,
                decode(&mut body, v)?,
            )
            .await?,
        ),
        ApiKey::ListPartitionReassignments => respond(
            &header,
            handlers::list_partition_reassignments::handle(
                ctx,
                conn,
                &header,
                decode(&mut body, v)?,
            )
            .await?,
        ),
        ApiKey::AlterPartition => respond(
            &header,
            handlers::alter_partition::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::AllocateProducerIds => respond(
            &header,
            handlers::allocate_producer_ids::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::CreateTopics => respond(
            &header,
            handlers::create_topics::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DeleteTopics => respond(
            &header,
            handlers::delete_topics::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::CreatePartitions => respond(
            &header,
            handlers::create_partitions::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::FindCoordinator => respond(
            &header,
            handlers::find_coordinator::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::JoinGroup => respond(
            &header,
            handlers::join_group::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::SyncGroup => respond(
            &header,
            handlers::sync_group::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::Heartbeat => respond(
            &header,
            handlers::heartbeat::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::LeaveGroup => respond(
            &header,
            handlers::leave_group::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::OffsetCommit => respond(
            &header,
            handlers::offset_commit::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::OffsetFetch => respond(
            &header,
            handlers::offset_fetch::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::ListGroups => respond(
            &header,
            handlers::list_groups::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DescribeGroups => respond(
            &header,
            handlers::describe_groups::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DeleteGroups => respond(
            &header,
            handlers::delete_groups::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::AddPartitionsToTxn => respond(
            &header,
            handlers::add_partitions_to_txn::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::AddOffsetsToTxn => respond(
            &header,
            handlers::add_offsets_to_txn::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::EndTxn => respond(
            &header,
            handlers::end_txn::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DescribeTransactions => respond(
            &header,
            handlers::describe_transactions::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::ListTransactions => respond(
            &header,
            handlers::list_transactions::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::OffsetDelete => respond(
            &header,
            handlers::offset_delete::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DescribeAcls => respond(
            &header,
            handlers::describe_acls::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::CreateAcls => respond(
            &header,
            handlers::create_acls::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DeleteAcls => respond(
            &header,
            handlers::delete_acls::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DescribeUserScramCredentials => respond(
            &header,
            handlers::describe_user_scram_credentials::handle(
                ctx,
                conn,
                &header,
                decode(&mut body, v)?,
            )
            .await?,
        ),
        ApiKey::AlterUserScramCredentials => respond(
            &header,
            handlers::alter_user_scram_credentials::handle(
                ctx,
                conn,
                &header,
                decode(&mut body, v)?,
            )
            .await?,
        ),
        ApiKey::SaslHandshake => respond(
            &header,
            handlers::sasl_handshake::handle(decode(&mut body, v)?)?,
        ),
        ApiKey::SaslAuthenticate => respond(
            &header,
            handlers::sasl_authenticate::handle(decode(&mut body, v)?)?,
        ),
        ApiKey::WriteTxnMarkers => respond(
            &header,
            handlers::write_txn_markers::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::TxnOffsetCommit => respond(
            &header,
            handlers::txn_offset_commit::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::DescribeProducers => respond(
            &header,
            handlers::describe_producers::handle(ctx, conn, &header, decode(&mut body, v)?).await?,
        ),
        ApiKey::CreateDelegationToken => respond(
            &header,
            handlers::create_delegation_token::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::RenewDelegationToken => respond(
            &header,
            handlers::renew_delegation_token::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::ExpireDelegationToken => respond(
            &header,
            handlers::expire_delegation_token::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::DescribeDelegationToken => respond(
            &header,
            handlers::describe_delegation_token::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::DescribeClientQuotas => respond(
            &header,
            handlers::describe_client_quotas::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        ApiKey::AlterClientQuotas => respond(
            &header,
            handlers::alter_client_quotas::handle(ctx, conn, &header, decode(&mut body, v)?)
                .await?,
        ),
        other => Err(Error::UnsupportedVersion(format!(
            "{other:?} is in the version table but has no dispatch arm"
        ))),
    }
}

/// The broker's [`RequestHandler`]: every connection routes through [`dispatch`].
#[derive(Clone)]
pub struct Dispatcher(pub Arc<BrokerContext>);

impl RequestHandler for Dispatcher {
    async fn handle(
        &self,
        conn: &ConnInfo,
        header: RequestHeader,
        body: Bytes,
    ) -> Result<Option<Vec<Chunk>>> {
        dispatch(&self.0, conn, header, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every implemented API has a 3.9 ZK range that kafka-protocol can encode.
    #[test]
    fn table_within_codec_range() {
        for key in IMPLEMENTED {
            let (lo, hi) = kafka_zk_versions(*key).expect("zk broker api");
            let codec = key.valid_versions();
            assert!(lo >= codec.min && hi <= codec.max, "{key:?}");
        }
        let t = version_table();
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(t.contains(&(18, 0, 4)));
    }
}
