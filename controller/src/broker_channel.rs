//! Controller → broker requests (Kafka's `ControllerChannelManager` and
//! `AbstractControllerBrokerRequestBatch`).
//!
//! Each live broker gets one queue and one sender task. The task connects to the broker's
//! control-plane (inter-broker) listener, sends one request at a time, and retries the same
//! request every 100 ms until it succeeds or the broker is removed. Responses that the
//! controller must act on come back as events on the controller queue.
//!
//! [`RequestBatch`] collects LeaderAndIsr / UpdateMetadata / StopReplica entries during one
//! state change and sends them in Kafka's order: LeaderAndIsr, UpdateMetadata, StopReplica.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::leader_and_isr_request::{
    LeaderAndIsrLiveLeader, LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
};
use kafka_protocol::messages::stop_replica_request::{
    StopReplicaPartitionState, StopReplicaTopicState,
};
use kafka_protocol::messages::update_metadata_request::{
    UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataPartitionState,
    UpdateMetadataTopicState,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, LeaderAndIsrRequest, LeaderAndIsrResponse,
    RequestHeader, ResponseHeader, StopReplicaRequest, StopReplicaResponse, TopicName,
    UpdateMetadataRequest, UpdateMetadataResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use samsa_common::security::client::{BoxedStream, ClientSecurity};
use samsa_common::types::{BrokerEpoch, BrokerId, ControllerEpoch, LeaderEpoch, TopicPartition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::context::{
    ControllerContext, LeaderIsrAndControllerEpoch, ReplicaAssignment, LEADER_DURING_DELETE,
};
use crate::event_loop::Event;

/// Versions of the control requests, pinned from the IBP (spec §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlVersions {
    pub leader_and_isr: i16,
    pub update_metadata: i16,
    pub stop_replica: i16,
}

/// A control request ready to send to one broker.
#[derive(Debug, Clone)]
pub enum ControlRequest {
    LeaderAndIsr(LeaderAndIsrRequest),
    UpdateMetadata(UpdateMetadataRequest),
    /// `deleting` = carries delete_partition entries whose result the deletion manager awaits.
    StopReplica {
        req: StopReplicaRequest,
        deleting: bool,
    },
}

/// What the sender task reports back to the controller.
#[derive(Debug)]
pub enum ControlResponse {
    LeaderAndIsr(LeaderAndIsrResponse),
    StopReplica {
        resp: StopReplicaResponse,
        /// The partitions asked to be deleted in that request.
        deleted: Vec<TopicPartition>,
    },
}

/// One sender per live broker.
struct BrokerChannel {
    tx: mpsc::UnboundedSender<ControlRequest>,
    task: tokio::task::JoinHandle<()>,
}

/// Connections to all live brokers (including this one).
pub struct ChannelManager {
    controller_id: BrokerId,
    versions: ControlVersions,
    socket_timeout: Duration,
    events: mpsc::UnboundedSender<Event>,
    channels: HashMap<BrokerId, BrokerChannel>,
    /// TLS/SASL of the control-plane listener (`None` = PLAINTEXT).
    security: Option<std::sync::Arc<ClientSecurity>>,
}

impl ChannelManager {
    /// Connect to brokers with TLS/SASL as `security` says.
    pub fn with_security(mut self, security: Option<std::sync::Arc<ClientSecurity>>) -> Self {
        self.security = security;
        self
    }

    pub fn new(
        controller_id: BrokerId,
        versions: ControlVersions,
        socket_timeout: Duration,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Self {
            controller_id,
            versions,
            socket_timeout,
            events,
            channels: HashMap::new(),
            security: None,
        }
    }

    /// Open a channel to `broker` at `host:port` (its control-plane listener).
    pub fn add_broker(&mut self, broker: BrokerId, addr: Option<(String, i32)>) {
        self.remove_broker(broker);
        let (tx, rx) = mpsc::unbounded_channel();
        let sender = Sender {
            broker,
            addr,
            client_id: format!("controller-{}-to-broker-{}", self.controller_id, broker),
            versions: self.versions,
            socket_timeout: self.socket_timeout,
            events: self.events.clone(),
            security: self.security.clone(),
            conn: None,
            negotiated: None,
            correlation: 0,
        };
        let task = tokio::spawn(sender.run(rx));
        self.channels.insert(broker, BrokerChannel { tx, task });
    }

    /// Stop the sender of a broker that is gone; queued requests are dropped.
    pub fn remove_broker(&mut self, broker: BrokerId) {
        if let Some(ch) = self.channels.remove(&broker) {
            ch.task.abort();
        }
    }

    pub fn has_broker(&self, broker: BrokerId) -> bool {
        self.channels.contains_key(&broker)
    }

    pub fn send(&self, broker: BrokerId, req: ControlRequest) {
        match self.channels.get(&broker) {
            Some(ch) => {
                let _ = ch.tx.send(req);
            }
            None => debug!(broker, "no channel to broker, dropping control request"),
        }
    }

    /// Close every channel (resignation).
    pub fn shutdown(&mut self) {
        for (_, ch) in self.channels.drain() {
            ch.task.abort();
        }
    }
}

impl Drop for ChannelManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The per-broker sender task state.
struct Sender {
    broker: BrokerId,
    addr: Option<(String, i32)>,
    client_id: String,
    versions: ControlVersions,
    socket_timeout: Duration,
    events: mpsc::UnboundedSender<Event>,
    security: Option<std::sync::Arc<ClientSecurity>>,
    conn: Option<BoxedStream>,
    /// Max versions the broker advertised for (LeaderAndIsr, UpdateMetadata, StopReplica).
    negotiated: Option<ControlVersions>,
    correlation: i32,
}

const RETRY_BACKOFF: Duration = Duration::from_millis(100);

impl Sender {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ControlRequest>) {
        while let Some(req) = rx.recv().await {
            let mut attempts = 0u32;
            loop {
                match self.send_once(&req).await {
                    Ok(resp) => {
                        if let Some(r) = resp {
                            let _ = self.events.send(Event::ControlResponse {
                                broker: self.broker,
                                resp: r,
                            });
                        }
                        break;
                    }
                    Err(e) => {
                        self.conn = None;
                        self.negotiated = None;
                        if attempts.is_multiple_of(50) {
                            warn!(broker = self.broker, error = %e, "control request failed, retrying");
                        }
                        attempts += 1;
                        tokio::time::sleep(RETRY_BACKOFF).await;
                    }
                }
            }
        }
    }

    async fn connect(&mut self) -> std::io::Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let Some((host, port)) = self.addr.clone() else {
            return Err(std::io::Error::other(
                "broker has no control-plane endpoint",
            ));
        };
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let stream = samsa_common::security::client::connect(
            &addr,
            self.security.as_deref(),
            &self.client_id,
            self.socket_timeout,
        )
        .await?;
        self.conn = Some(stream);
        info!(broker = self.broker, %host, port, "controller connected to broker");
        // Negotiate down if the broker supports less than the IBP's versions.
        let resp: ApiVersionsResponse = self
            .roundtrip(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
            .await?;
        let max_of = |key: ApiKey, pinned: i16| {
            resp.api_keys
                .iter()
                .find(|k| k.api_key == key as i16)
                .map(|k| k.max_version.min(pinned))
                .unwrap_or(pinned)
        };
        self.negotiated = Some(ControlVersions {
            leader_and_isr: max_of(ApiKey::LeaderAndIsr, self.versions.leader_and_isr),
            update_metadata: max_of(ApiKey::UpdateMetadata, self.versions.update_metadata),
            stop_replica: max_of(ApiKey::StopReplica, self.versions.stop_replica),
        });
        Ok(())
    }

    async fn send_once(
        &mut self,
        req: &ControlRequest,
    ) -> std::io::Result<Option<ControlResponse>> {
        self.connect().await?;
        let v = self.negotiated.unwrap_or(self.versions);
        Ok(match req {
            ControlRequest::LeaderAndIsr(r) => {
                let resp: LeaderAndIsrResponse = self
                    .roundtrip(ApiKey::LeaderAndIsr, v.leader_and_isr, r)
                    .await?;
                Some(ControlResponse::LeaderAndIsr(resp))
            }
            ControlRequest::UpdateMetadata(r) => {
                let resp: UpdateMetadataResponse = self
                    .roundtrip(ApiKey::UpdateMetadata, v.update_metadata, r)
                    .await?;
                if resp.error_code != 0 {
                    warn!(
                        broker = self.broker,
                        code = resp.error_code,
                        "UpdateMetadata error"
                    );
                }
                None
            }
            ControlRequest::StopReplica { req: r, deleting } => {
                let resp: StopReplicaResponse = self
                    .roundtrip(ApiKey::StopReplica, v.stop_replica, r)
                    .await?;
                if *deleting {
                    let deleted = r
                        .topic_states
                        .iter()
                        .flat_map(|t| {
                            t.partition_states
                                .iter()
                                .filter(|p| p.delete_partition)
                                .map(|p| {
                                    TopicPartition::new(
                                        t.topic_name.0.to_string(),
                                        p.partition_index,
                                    )
                                })
                        })
                        .collect();
                    Some(ControlResponse::StopReplica { resp, deleted })
                } else {
                    None
                }
            }
        })
    }

    /// One request/response exchange: `size | header | body`.
    async fn roundtrip<Req, Resp>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> std::io::Result<Resp>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_string(self.client_id.clone()));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, Req::header_version(version))
            .map_err(proto_err)?;
        req.encode(&mut buf, version).map_err(proto_err)?;
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());
        let timeout = self.socket_timeout;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| std::io::Error::other("not connected"))?;
        let exchange = async {
            conn.write_all(&buf).await?;
            let len = conn.read_i32().await?;
            if !(0..=64 * 1024 * 1024).contains(&len) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "bad response size",
                ));
            }
            let mut body = vec![0u8; len as usize];
            conn.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        let body = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out")
            })??;
        let mut bytes = bytes::Bytes::from(body);
        let rh =
            ResponseHeader::decode(&mut bytes, Resp::header_version(version)).map_err(proto_err)?;
        if rh.correlation_id != correlation {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "correlation id mismatch",
            ));
        }
        let resp = Resp::decode(&mut bytes, version).map_err(proto_err)?;
        let _ = bytes.remaining();
        Ok(resp)
    }
}

fn proto_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// StopReplica entry for one partition on one broker.
#[derive(Clone, Copy, Debug)]
struct StopEntry {
    delete: bool,
    leader_epoch: LeaderEpoch,
}

/// Requests collected during one controller action (Kafka's `ControllerBrokerRequestBatch`).
#[derive(Default)]
pub struct RequestBatch {
    leader_and_isr: BTreeMap<BrokerId, BTreeMap<TopicPartition, LeaderAndIsrPartitionState>>,
    update_metadata_brokers: BTreeSet<BrokerId>,
    update_metadata_partitions: BTreeMap<TopicPartition, UpdateMetadataPartitionState>,
    stop_replica: BTreeMap<BrokerId, BTreeMap<TopicPartition, StopEntry>>,
}

fn ids(v: &[BrokerId]) -> Vec<kafka_protocol::messages::BrokerId> {
    v.iter().map(|b| (*b).into()).collect()
}

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

impl RequestBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.leader_and_isr.is_empty()
            && self.update_metadata_brokers.is_empty()
            && self.stop_replica.is_empty()
    }

    /// `addLeaderAndIsrRequestForBrokers`: LeaderAndIsr to `brokers` and the partition's
    /// metadata to every live-or-shutting-down broker.
    pub fn add_leader_and_isr(
        &mut self,
        ctx: &ControllerContext,
        brokers: &[BrokerId],
        tp: &TopicPartition,
        leadership: &LeaderIsrAndControllerEpoch,
        assignment: &ReplicaAssignment,
        is_new: bool,
    ) {
        for b in brokers.iter().copied().filter(|b| *b >= 0) {
            let entry = self.leader_and_isr.entry(b).or_default();
            let already_new = entry.get(tp).is_some_and(|s| s.is_new);
            let l = &leadership.leader_and_isr;
            let mut s = LeaderAndIsrPartitionState::default();
            s.topic_name = topic_name(&tp.topic);
            s.partition_index = tp.partition;
            s.controller_epoch = leadership.controller_epoch;
            s.leader = l.leader.into();
            s.leader_epoch = l.leader_epoch;
            s.isr = ids(&l.isr);
            s.partition_epoch = l.partition_epoch;
            s.replicas = ids(&assignment.replicas);
            s.adding_replicas = ids(&assignment.adding);
            s.removing_replicas = ids(&assignment.removing);
            s.is_new = is_new || already_new;
            s.leader_recovery_state = l.leader_recovery_state;
            entry.insert(tp.clone(), s);
        }
        self.add_update_metadata(
            ctx,
            &ctx.live_or_shutting_down_ids(),
            std::slice::from_ref(tp),
        );
    }

    /// `addUpdateMetadataRequestForBrokers`: `brokers` get an UpdateMetadata carrying the
    /// current state of `partitions` (those with a leader recorded).
    pub fn add_update_metadata(
        &mut self,
        ctx: &ControllerContext,
        brokers: &[BrokerId],
        partitions: &[TopicPartition],
    ) {
        self.update_metadata_brokers
            .extend(brokers.iter().copied().filter(|b| *b >= 0));
        for tp in partitions {
            let Some(l) = ctx.leadership.get(tp) else {
                continue;
            };
            let deleting = ctx.is_topic_queued_for_deletion(&tp.topic);
            let lai = &l.leader_and_isr;
            let mut s = UpdateMetadataPartitionState::default();
            s.topic_name = topic_name(&tp.topic);
            s.partition_index = tp.partition;
            s.controller_epoch = l.controller_epoch;
            if deleting {
                s.leader = LEADER_DURING_DELETE.into();
                s.leader_epoch = 0;
                s.zk_version = 0;
            } else {
                s.leader = lai.leader.into();
                s.leader_epoch = lai.leader_epoch;
                s.zk_version = lai.partition_epoch;
            }
            s.isr = ids(&lai.isr);
            s.replicas = ids(&ctx.replicas(tp));
            s.offline_replicas = ids(&ctx.offline_replicas(tp));
            self.update_metadata_partitions.insert(tp.clone(), s);
        }
    }

    /// `addStopReplicaRequestForBrokers`; entries for the same partition and broker merge
    /// with delete = OR.
    pub fn add_stop_replica(
        &mut self,
        ctx: &ControllerContext,
        brokers: &[BrokerId],
        tp: &TopicPartition,
        delete: bool,
    ) {
        let leader_epoch = if ctx.is_topic_queued_for_deletion(&tp.topic) {
            crate::context::EPOCH_DURING_DELETE
        } else {
            ctx.leadership
                .get(tp)
                .map(|l| l.leader_and_isr.leader_epoch)
                .unwrap_or(-1)
        };
        for b in brokers.iter().copied().filter(|b| *b >= 0) {
            let e = self
                .stop_replica
                .entry(b)
                .or_default()
                .entry(tp.clone())
                .or_insert(StopEntry {
                    delete,
                    leader_epoch,
                });
            e.delete |= delete;
        }
    }

    /// Build and enqueue everything collected, then clear the batch.
    pub fn send(
        &mut self,
        ctx: &ControllerContext,
        channels: &ChannelManager,
        controller_id: BrokerId,
        leader_listener: &str,
    ) {
        let epoch = ctx.epoch;
        let batch = std::mem::take(self);
        for (broker, states) in batch.leader_and_isr {
            let Some(broker_epoch) = ctx.broker_epoch(broker) else {
                continue;
            };
            let req = build_leader_and_isr(
                ctx,
                controller_id,
                epoch,
                broker_epoch,
                leader_listener,
                states,
            );
            channels.send(broker, ControlRequest::LeaderAndIsr(req));
        }
        if !batch.update_metadata_brokers.is_empty() {
            let live_brokers = live_brokers_for_update_metadata(ctx);
            let mut topics: BTreeMap<String, Vec<UpdateMetadataPartitionState>> = BTreeMap::new();
            for (tp, s) in batch.update_metadata_partitions {
                topics.entry(tp.topic).or_default().push(s);
            }
            let topic_states: Vec<UpdateMetadataTopicState> = topics
                .into_iter()
                .map(|(t, parts)| {
                    let mut ts = UpdateMetadataTopicState::default();
                    ts.topic_id = ctx.topic_ids.get(&t).copied().unwrap_or_default();
                    ts.topic_name = topic_name(&t);
                    ts.partition_states = parts;
                    ts
                })
                .collect();
            for broker in batch.update_metadata_brokers {
                let Some(broker_epoch) = ctx.broker_epoch(broker) else {
                    continue;
                };
                let mut req = UpdateMetadataRequest::default();
                req.controller_id = controller_id.into();
                req.controller_epoch = epoch;
                req.broker_epoch = broker_epoch;
                req.topic_states = topic_states.clone();
                req.live_brokers = live_brokers.clone();
                channels.send(broker, ControlRequest::UpdateMetadata(req));
            }
        }
        for (broker, entries) in batch.stop_replica {
            let Some(broker_epoch) = ctx.broker_epoch(broker) else {
                continue;
            };
            let deleting = entries.values().any(|e| e.delete);
            let mut topics: BTreeMap<String, Vec<StopReplicaPartitionState>> = BTreeMap::new();
            for (tp, e) in entries {
                let mut ps = StopReplicaPartitionState::default();
                ps.partition_index = tp.partition;
                ps.leader_epoch = e.leader_epoch;
                ps.delete_partition = e.delete;
                topics.entry(tp.topic).or_default().push(ps);
            }
            let mut req = StopReplicaRequest::default();
            req.controller_id = controller_id.into();
            req.controller_epoch = epoch;
            req.broker_epoch = broker_epoch;
            req.topic_states = topics
                .into_iter()
                .map(|(t, parts)| {
                    let mut ts = StopReplicaTopicState::default();
                    ts.topic_name = topic_name(&t);
                    ts.partition_states = parts;
                    ts
                })
                .collect();
            channels.send(broker, ControlRequest::StopReplica { req, deleting });
        }
    }
}

fn build_leader_and_isr(
    ctx: &ControllerContext,
    controller_id: BrokerId,
    epoch: ControllerEpoch,
    broker_epoch: BrokerEpoch,
    leader_listener: &str,
    states: BTreeMap<TopicPartition, LeaderAndIsrPartitionState>,
) -> LeaderAndIsrRequest {
    let leaders: BTreeSet<BrokerId> = states.values().map(|s| s.leader.0).collect();
    let live_leaders = leaders
        .into_iter()
        .filter_map(|id| {
            let b = ctx.live_brokers.get(&id)?;
            let ep = b.info.endpoint(leader_listener)?;
            let mut l = LeaderAndIsrLiveLeader::default();
            l.broker_id = id.into();
            l.host_name = StrBytes::from_string(ep.host.clone());
            l.port = ep.port;
            Some(l)
        })
        .collect();
    let mut topics: BTreeMap<String, Vec<LeaderAndIsrPartitionState>> = BTreeMap::new();
    for (tp, s) in states {
        topics.entry(tp.topic).or_default().push(s);
    }
    let mut req = LeaderAndIsrRequest::default();
    req.controller_id = controller_id.into();
    req.controller_epoch = epoch;
    req.broker_epoch = broker_epoch;
    req.topic_states = topics
        .into_iter()
        .map(|(t, parts)| {
            let mut ts = LeaderAndIsrTopicState::default();
            ts.topic_id = ctx.topic_ids.get(&t).copied().unwrap_or_default();
            ts.topic_name = topic_name(&t);
            ts.partition_states = parts;
            ts
        })
        .collect();
    req.live_leaders = live_leaders;
    req
}

/// Every registered broker with all its endpoints and rack.
fn live_brokers_for_update_metadata(ctx: &ControllerContext) -> Vec<UpdateMetadataBroker> {
    ctx.live_brokers
        .values()
        .map(|b| {
            let mut ub = UpdateMetadataBroker::default();
            ub.id = b.info.id.into();
            ub.rack = b.info.rack.clone().map(StrBytes::from_string);
            ub.endpoints = b
                .info
                .endpoints
                .iter()
                .map(|e| {
                    let mut ep = UpdateMetadataEndpoint::default();
                    ep.port = e.port;
                    ep.host = StrBytes::from_string(e.host.clone());
                    ep.listener = StrBytes::from_string(e.listener_name.clone());
                    ep.security_protocol = e.security_protocol.id();
                    ep
                })
                .collect();
            ub
        })
        .collect()
}
