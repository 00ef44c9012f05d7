//! The ZooKeeper-mode controller: run by the broker that wins `/controller`.
//!
//! Every broker starts the controller component with [`spawn`]. It takes part in the
//! `/controller` election forever; when it wins it loads the cluster state from ZooKeeper and
//! runs Kafka's controller duties in one event loop (see `event_loop.rs`), talking to brokers
//! (its own included) only through ZooKeeper and Kafka control RPCs.
//!
//! The broker talks to it through the cloneable [`ControllerHandle`]:
//! * [`ControllerHandle::status`] / [`ControllerHandle::is_active`]: whether this broker is the
//!   active controller (CreateTopics/DeleteTopics answer NOT_CONTROLLER otherwise);
//! * [`ControllerHandle::alter_partition`] / [`ControllerHandle::controlled_shutdown`]: the
//!   broker's AlterPartition / ControlledShutdown handlers forward the decoded request here and
//!   send back the response (which is correct whether or not this broker is the controller);
//! * [`ControllerHandle::session_renewed`]: after a ZooKeeper session expiry the broker opens a
//!   new session, re-registers `/brokers/ids/<id>`, then hands the new session here so the
//!   controller re-runs the election;
//! * [`ControllerHandle::shutdown`]: resign and stop (before closing the ZooKeeper session).

pub mod assignment;
pub mod broker_channel;
pub mod context;
pub mod election;
pub mod error;
pub mod event_loop;
pub mod leader_selection;
pub mod metrics;
pub mod partition_state;
mod pipeline;
pub mod reassignment;
pub mod replica_state;
pub mod rpc;
pub mod topic_deletion;

use std::time::Duration;

use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, ControlledShutdownRequest,
    ControlledShutdownResponse,
};
use samsa_common::types::{BrokerId, ControllerEpoch, TopicPartition};
use samsa_common::zk::session::ZkSession;
use tokio::sync::{mpsc, oneshot, watch};

use crate::broker_channel::ControlVersions;
use crate::event_loop::Event;

/// What the controller needs from the broker configuration.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// `broker.id`.
    pub broker_id: BrokerId,
    /// Listener the controller uses to reach brokers: `control.plane.listener.name` if set, else
    /// the inter-broker listener name (upper case, e.g. `PLAINTEXT`).
    pub control_listener: String,
    /// `inter.broker.listener.name` when it differs from `control_listener` (i.e. a
    /// `control.plane.listener.name` is set): LeaderAndIsr `LiveLeaders` carry the leaders'
    /// endpoints on this listener (followers fetch there). `None` = same as `control_listener`.
    pub inter_broker_listener: Option<String>,
    /// `inter.broker.protocol.version`, e.g. `3.9` or `3.9-IV0`.
    pub inter_broker_protocol_version: String,
    /// `unclean.leader.election.enable` (broker default; topics may override). Shared with
    /// the broker, which flips it when the dynamic broker config changes.
    pub unclean_leader_election_enable: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval: Duration,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `controller.socket.timeout.ms`: connect and request timeout towards brokers.
    pub socket_timeout: Duration,
    /// TLS/SASL towards brokers (the control-plane listener's protocol); `None` = PLAINTEXT.
    pub security: Option<std::sync::Arc<samsa_common::security::client::ClientSecurity>>,
}

impl ControllerConfig {
    /// Kafka 3.9 defaults for a broker id.
    pub fn new(broker_id: BrokerId) -> Self {
        Self {
            broker_id,
            control_listener: "PLAINTEXT".into(),
            inter_broker_listener: None,
            inter_broker_protocol_version: "3.9".into(),
            unclean_leader_election_enable: Default::default(),
            auto_leader_rebalance_enable: true,
            leader_imbalance_per_broker_percentage: 10,
            leader_imbalance_check_interval: Duration::from_secs(300),
            delete_topic_enable: true,
            socket_timeout: Duration::from_millis(30_000),
            security: None,
        }
    }

    /// The listener whose endpoints LeaderAndIsr advertises for leaders.
    pub fn leader_listener(&self) -> &str {
        self.inter_broker_listener
            .as_deref()
            .unwrap_or(&self.control_listener)
    }

    /// `(major, minor)` of the IBP; unparseable → 3.9.
    pub fn ibp(&self) -> (u32, u32) {
        let mut it = self
            .inter_broker_protocol_version
            .split(['.', '-'])
            .map(|s| s.parse::<u32>().ok());
        match (it.next().flatten(), it.next().flatten()) {
            (Some(a), Some(b)) => (a, b),
            _ => (3, 9),
        }
    }

    /// Control request versions pinned by the IBP (spec §4.1).
    pub fn control_versions(&self) -> ControlVersions {
        let ibp = self.ibp();
        let (l, u, s) = if ibp >= (3, 4) {
            (7, 8, 4)
        } else if ibp >= (3, 2) {
            (6, 7, 3)
        } else if ibp >= (2, 8) {
            (5, 7, 3)
        } else if ibp >= (2, 6) {
            (4, 6, 3)
        } else {
            (4, 6, 2)
        };
        ControlVersions {
            leader_and_isr: l,
            update_metadata: u,
            stop_replica: s,
        }
    }

    /// IBP ≥ 3.2-IV0: unclean elections mark the leader RECOVERING.
    pub fn leader_recovery_supported(&self) -> bool {
        self.ibp() >= (3, 2)
    }

    /// IBP ≥ 2.8-IV0: topics get a topic id.
    pub fn topic_ids_supported(&self) -> bool {
        self.ibp() >= (2, 8)
    }
}

/// Who controls the cluster, as far as this broker knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerStatus {
    /// This broker is the active controller.
    pub active: bool,
    /// Broker id named by `/controller`, if any.
    pub controller_id: Option<BrokerId>,
    /// Our controller epoch while active.
    pub epoch: ControllerEpoch,
}

/// The broker's handle on its controller component (cheap to clone).
#[derive(Clone)]
pub struct ControllerHandle {
    events: mpsc::UnboundedSender<Event>,
    status: watch::Receiver<ControllerStatus>,
    metrics: std::sync::Arc<metrics::ControllerMetrics>,
}

/// Start the controller component of this broker (call once the broker is registered).
pub fn spawn(zk: ZkSession, cfg: ControllerConfig) -> ControllerHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(ControllerStatus::default());
    let controller = event_loop::Controller::new(zk, cfg, tx.clone(), status_tx);
    let metrics = controller.metrics.clone();
    tokio::spawn(controller.run(rx));
    let _ = tx.send(Event::Startup);
    ControllerHandle {
        events: tx,
        status: status_rx,
        metrics,
    }
}

/// One partition's outcome of an ElectLeaders request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionResult {
    pub partition: TopicPartition,
    pub error_code: i16,
    pub message: Option<String>,
    /// The leader written to ZooKeeper when `error_code` is 0: the broker handling the
    /// request waits until its metadata cache shows it before answering, as Kafka does.
    pub leader: Option<BrokerId>,
}

/// Per-partition results of an ElectLeaders request, or a top-level error code
/// (41 NOT_CONTROLLER) when this broker is not the controller.
pub type ElectLeadersResult = std::result::Result<Vec<ElectionResult>, i16>;
/// Per-partition `(error code, message)` of an AlterPartitionReassignments request, or a
/// top-level error code.
pub type AlterReassignmentsResult =
    std::result::Result<Vec<(TopicPartition, i16, Option<String>)>, i16>;
/// Ongoing reassignments `(partition, replicas, adding, removing)`, or a top-level error code.
pub type ListReassignmentsResult =
    std::result::Result<Vec<(TopicPartition, Vec<BrokerId>, Vec<BrokerId>, Vec<BrokerId>)>, i16>;

/// `(first producer id, block length)` or an error code (41 NOT_CONTROLLER,
/// 102 BROKER_ID_NOT_REGISTERED, 77 STALE_BROKER_EPOCH, -1 UNKNOWN_SERVER_ERROR).
pub type AllocateProducerIdsResult = std::result::Result<(i64, i32), i16>;

const NOT_CONTROLLER: i16 = 41;
const STALE_CONTROLLER_EPOCH: i16 = 11;

impl ControllerHandle {
    pub fn status(&self) -> ControllerStatus {
        *self.status.borrow()
    }

    pub fn is_active(&self) -> bool {
        self.status.borrow().active
    }

    /// The controller's gauges and timers (for the broker's metrics endpoint).
    pub fn metrics(&self) -> &metrics::ControllerMetrics {
        &self.metrics
    }

    /// Wait for status changes (e.g. tests waiting for election).
    pub fn status_watcher(&self) -> watch::Receiver<ControllerStatus> {
        self.status.clone()
    }

    /// Sends a request event carrying a reply channel to the event loop and waits for the
    /// answer; `None` when the loop is gone or dropped the request (not the controller).
    async fn ask<R>(&self, event: impl FnOnce(oneshot::Sender<R>) -> Event) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        self.events.send(event(tx)).ok()?;
        rx.await.ok()
    }

    /// Process an AlterPartition request (any version). Answers NOT_CONTROLLER when this
    /// broker is not the active controller.
    pub async fn alter_partition(
        &self,
        req: AlterPartitionRequest,
        version: i16,
    ) -> AlterPartitionResponse {
        let ev = |reply| Event::AlterPartition {
            req,
            version,
            reply,
        };
        self.ask(ev).await.unwrap_or_else(|| {
            let mut r = AlterPartitionResponse::default();
            r.error_code = NOT_CONTROLLER;
            r
        })
    }

    /// Process a ControlledShutdown request. Answers STALE_CONTROLLER_EPOCH (Kafka's
    /// ControllerMovedException mapping) when this broker is not the active controller.
    pub async fn controlled_shutdown(
        &self,
        req: ControlledShutdownRequest,
        version: i16,
    ) -> ControlledShutdownResponse {
        let ev = |reply| Event::ControlledShutdown {
            req,
            version,
            reply,
        };
        self.ask(ev).await.unwrap_or_else(|| {
            let mut r = ControlledShutdownResponse::default();
            r.error_code = STALE_CONTROLLER_EPOCH;
            r
        })
    }

    /// Admin ElectLeaders (election type 0 = preferred, 1 = unclean); `None` = all partitions.
    /// Per-partition codes: 0, ELECTION_NOT_NEEDED(84), PREFERRED_LEADER_NOT_AVAILABLE(80),
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE(83), INVALID_TOPIC_EXCEPTION(17), UNKNOWN_TOPIC_OR_PARTITION(3).
    pub async fn elect_leaders(
        &self,
        partitions: Option<Vec<TopicPartition>>,
        election_type: i8,
    ) -> ElectLeadersResult {
        let ev = |reply| Event::ElectLeaders {
            partitions,
            unclean: election_type == 1,
            reply,
        };
        self.ask(ev).await.unwrap_or(Err(NOT_CONTROLLER))
    }

    /// Admin AlterPartitionReassignments: target replicas per partition, `None` cancels.
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<(TopicPartition, Option<Vec<BrokerId>>)>,
    ) -> AlterReassignmentsResult {
        let ev = |reply| Event::AlterPartitionReassignments {
            reassignments,
            reply,
        };
        self.ask(ev).await.unwrap_or(Err(NOT_CONTROLLER))
    }

    /// Admin ListPartitionReassignments; `None` = all ongoing.
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> ListReassignmentsResult {
        let ev = |reply| Event::ListPartitionReassignments { partitions, reply };
        self.ask(ev).await.unwrap_or(Err(NOT_CONTROLLER))
    }

    /// AllocateProducerIds (key 67): the next block of 1000 producer ids for `broker_id`,
    /// recorded in `/latest_producer_id_block`.
    pub async fn allocate_producer_ids(
        &self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> AllocateProducerIdsResult {
        let ev = |reply| Event::AllocateProducerIds {
            broker_id,
            broker_epoch,
            reply,
        };
        self.ask(ev).await.unwrap_or(Err(NOT_CONTROLLER))
    }

    /// A topic's config changed (e.g. `unclean.leader.election.enable` turned on): the
    /// controller re-runs elections for leaderless partitions (Kafka's
    /// `TopicUncleanLeaderElectionEnable`). Cheap no-op when not the controller.
    pub fn topic_config_changed(&self) {
        let _ = self.events.send(Event::TopicConfigChanged);
    }

    /// A new ZooKeeper session replaced an expired one (broker already re-registered):
    /// resign if needed and run the election on the new session.
    pub fn session_renewed(&self, zk: ZkSession) {
        let _ = self.events.send(Event::NewSession(zk));
    }

    /// Resign (if active) and stop the controller task.
    pub async fn shutdown(&self) {
        self.ask(Event::Shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use samsa_common::zk::session::ZkConfig;
    use samsa_common::zk::testing::TestZk;

    async fn wait_for(h: &ControllerHandle, what: &str, ok: impl Fn(&ControllerStatus) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut rx = h.status_watcher();
        while !ok(&rx.borrow_and_update()) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // Err inside: the controller task ended (and dropped the status sender).
            assert!(
                matches!(tokio::time::timeout(left, rx.changed()).await, Ok(Ok(()))),
                "controller gone or timed out waiting for {what}: {:?}",
                h.status()
            );
        }
    }

    /// A panic while processing an event is contained: the controller gives up `/controller`,
    /// wins the next election with a fresh context and keeps answering requests, instead of
    /// the task dying while this broker still holds the role.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_event_does_not_stop_the_controller() {
        let zkd = TestZk::start();
        let cfg = ZkConfig::new(
            zkd.connect_string_with_chroot("/panic"),
            Duration::from_secs(6),
        );
        let zk = ZkSession::connect(&cfg).await.unwrap();
        zk.create_top_level_paths().await.unwrap();
        let h = spawn(zk.clone(), ControllerConfig::new(1));
        wait_for(&h, "first election", |s| s.active && s.epoch == 1).await;
        h.events.send(Event::TestPanic).unwrap();
        wait_for(&h, "re-election after the panic", |s| {
            s.active && s.epoch == 2
        })
        .await;
        assert_eq!(h.list_partition_reassignments(None).await, Ok(vec![]));
        h.shutdown().await;
    }

    #[test]
    fn versions_follow_ibp() {
        let mut c = ControllerConfig::new(1);
        assert_eq!(
            c.control_versions(),
            ControlVersions {
                leader_and_isr: 7,
                update_metadata: 8,
                stop_replica: 4
            }
        );
        c.inter_broker_protocol_version = "3.3-IV3".into();
        assert_eq!(c.control_versions().leader_and_isr, 6);
        c.inter_broker_protocol_version = "2.8-IV1".into();
        assert_eq!(c.control_versions().leader_and_isr, 5);
        assert!(!c.leader_recovery_supported());
        assert!(c.topic_ids_supported());
    }
}
