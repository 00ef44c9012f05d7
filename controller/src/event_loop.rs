//! The controller event loop (Kafka's `ControllerEventManager` + `KafkaController.process`).
//!
//! One task owns [`Controller`] (and so the [`ControllerContext`]) and handles one [`Event`] at a
//! time. ZooKeeper watches, broker responses, timers and forwarded RPCs only enqueue events;
//! every decision and every ZooKeeper write happens here, in order.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;

use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, ControlledShutdownRequest,
    ControlledShutdownResponse,
};
use samsa_common::types::{BrokerEpoch, BrokerId, TopicPartition};
use samsa_common::zk::session::{EventType, SessionState, WatchedEvent, ZkSession, ZkWatch};
use samsa_common::zk::znodes::*;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::broker_channel::{ChannelManager, ControlResponse, RequestBatch};
use crate::context::{ControllerContext, LiveBroker, ReplicaAssignment};
use crate::error::{Error, Result};
use crate::leader_selection::ElectionStrategy;
use crate::partition_state::PartitionState;
use crate::replica_state::ReplicaState;
use crate::{ControllerConfig, ControllerStatus};

/// Which watch fired.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WatchKey {
    Controller,
    BrokerIds,
    Broker(BrokerId),
    Topics,
    Topic(String),
    DeleteTopics,
    IsrChangeNotification,
    LogDirEventNotification,
    PreferredReplicaElection,
    ReassignPartitions,
}

/// Everything the controller reacts to.
#[derive(Debug)]
pub enum Event {
    /// First election after start.
    Startup,
    /// A ZooKeeper watch fired (`generation` discards watches of an earlier reign/session).
    Watch {
        generation: u64,
        key: WatchKey,
        event: WatchedEvent,
    },
    /// A broker answered a control request the controller must act on.
    ControlResponse {
        broker: BrokerId,
        resp: ControlResponse,
    },
    AlterPartition {
        req: AlterPartitionRequest,
        version: i16,
        reply: oneshot::Sender<AlterPartitionResponse>,
    },
    ControlledShutdown {
        req: ControlledShutdownRequest,
        version: i16,
        reply: oneshot::Sender<ControlledShutdownResponse>,
    },
    /// Admin ElectLeaders: `None` partitions = all; `unclean` = election type 1.
    ElectLeaders {
        partitions: Option<Vec<TopicPartition>>,
        unclean: bool,
        reply: oneshot::Sender<crate::ElectLeadersResult>,
    },
    /// Admin AlterPartitionReassignments: target `None` cancels.
    AlterPartitionReassignments {
        reassignments: Vec<(TopicPartition, Option<Vec<BrokerId>>)>,
        reply: oneshot::Sender<crate::AlterReassignmentsResult>,
    },
    /// Admin ListPartitionReassignments: `None` = all.
    ListPartitionReassignments {
        partitions: Option<Vec<TopicPartition>>,
        reply: oneshot::Sender<crate::ListReassignmentsResult>,
    },
    /// AllocateProducerIds from a broker (IBP ≥ 3.0-IV0).
    AllocateProducerIds {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
        reply: oneshot::Sender<crate::AllocateProducerIdsResult>,
    },
    /// A topic config (or the broker default) changed: re-run offline elections, which may
    /// now be allowed to be unclean.
    TopicConfigChanged,
    /// Periodic preferred-leader check.
    AutoRebalance {
        generation: u64,
    },
    /// The ZooKeeper session ended.
    SessionLost {
        generation: u64,
    },
    /// After a failed event: re-read the watched paths (re-arming any watch the failure left
    /// unarmed) so no change is missed.
    Resync {
        generation: u64,
    },
    /// The broker opened a new ZooKeeper session after an expiry.
    NewSession(ZkSession),
    Shutdown(oneshot::Sender<()>),
    /// Panics inside event processing (tests of the panic containment in [`Controller::run`]).
    #[cfg(test)]
    TestPanic,
}

/// The controller component of one broker.
pub struct Controller {
    pub(crate) cfg: ControllerConfig,
    pub(crate) zk: ZkSession,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    status: watch::Sender<ControllerStatus>,
    pub(crate) active: bool,
    pub(crate) active_id: Option<BrokerId>,
    pub(crate) ctx: ControllerContext,
    pub(crate) channels: ChannelManager,
    pub(crate) batch: RequestBatch,
    /// Watches currently armed (one-shot), so each path has at most one pending watcher.
    armed: HashSet<WatchKey>,
    /// Bumped on every resignation / session change; stale watch and timer events are dropped.
    pub(crate) generation: u64,
    pub(crate) session_alive: bool,
    resync_pending: bool,
    /// Gauges recomputed after every event; read by the broker's metrics endpoint.
    pub(crate) metrics: std::sync::Arc<crate::metrics::ControllerMetrics>,
}

impl Controller {
    pub fn new(
        zk: ZkSession,
        cfg: ControllerConfig,
        events: mpsc::UnboundedSender<Event>,
        status: watch::Sender<ControllerStatus>,
    ) -> Self {
        let channels = ChannelManager::new(
            cfg.broker_id,
            cfg.control_versions(),
            cfg.socket_timeout,
            events.clone(),
        );
        Self {
            cfg,
            zk,
            events,
            status,
            active: false,
            active_id: None,
            ctx: ControllerContext::default(),
            channels,
            batch: RequestBatch::new(),
            armed: HashSet::new(),
            generation: 0,
            session_alive: true,
            resync_pending: false,
            metrics: Default::default(),
        }
    }

    /// The event loop: runs until [`Event::Shutdown`].
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        while let Some(ev) = rx.recv().await {
            if let Event::Shutdown(done) = ev {
                self.resign_for_shutdown().await;
                let _ = done.send(());
                return;
            }
            // A panic here must not end the task: the broker would keep `/controller` (its
            // session lives on) with nobody processing events, stalling the whole cluster.
            let outcome = AssertUnwindSafe(self.process(ev)).catch_unwind().await;
            if let Err(panic) = outcome {
                self.after_panic(panic_message(panic.as_ref())).await;
            }
            self.metrics.update(self.active, &self.ctx);
        }
        self.resign();
    }

    /// A clean shutdown resigns and gives up `/controller` at once. Kafka closes its ZooKeeper
    /// session on shutdown, which deletes the ephemeral; this broker's session outlives the
    /// process until it expires, so without the delete every other broker would wait a whole
    /// session timeout to elect a controller, and a controlled shutdown of the controller
    /// would stall the leader moves it just made (found by the fault drill).
    async fn resign_for_shutdown(&mut self) {
        let was_active = self.active;
        self.resign();
        if was_active && self.session_alive {
            if let Err(e) = self.delete_controller_znode().await {
                warn!(error = %e, "could not give up /controller on shutdown");
            }
        }
    }

    /// After a panic mid-event the context may be half updated, so it is not trusted: resign
    /// and, if we were the active controller, give up `/controller`, so that whoever wins the
    /// next election (us included) rebuilds the state from ZooKeeper. The pause keeps a panic
    /// that repeats on every failover from spinning.
    async fn after_panic(&mut self, msg: String) {
        error!(panic = %msg, "controller event panicked; resigning so the state is rebuilt from ZooKeeper");
        let was_active = self.active;
        self.resign();
        if was_active && self.session_alive {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Err(e) = self.delete_controller_znode().await {
                warn!(error = %e, "could not give up /controller after a panic");
            }
        }
    }

    async fn process(&mut self, ev: Event) {
        let result = match ev {
            Event::Startup => self.elect().await,
            Event::Watch {
                generation,
                key,
                event,
            } => {
                if generation != self.generation {
                    return;
                }
                self.armed.remove(&key);
                if event.event_type == EventType::Session
                    && matches!(
                        event.session_state,
                        SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
                    )
                {
                    self.session_lost();
                    return;
                }
                self.on_watch(key).await
            }
            Event::ControlResponse { broker, resp } => {
                if !self.active {
                    return;
                }
                self.on_control_response(broker, resp).await
            }
            Event::AlterPartition {
                req,
                version,
                reply,
            } => {
                let (resp, r) = self.on_alter_partition(req, version).await;
                let _ = reply.send(resp);
                r
            }
            Event::ControlledShutdown {
                req,
                version,
                reply,
            } => {
                let (resp, r) = self.on_controlled_shutdown(req, version).await;
                let _ = reply.send(resp);
                r
            }
            Event::ElectLeaders {
                partitions,
                unclean,
                reply,
            } => {
                let (resp, r) = self.on_elect_leaders(partitions, unclean).await;
                let _ = reply.send(resp);
                r
            }
            Event::AlterPartitionReassignments {
                reassignments,
                reply,
            } => {
                let (resp, r) = self.on_alter_partition_reassignments(reassignments).await;
                let _ = reply.send(resp);
                r
            }
            Event::ListPartitionReassignments { partitions, reply } => {
                let _ = reply.send(self.on_list_partition_reassignments(partitions));
                Ok(())
            }
            Event::AllocateProducerIds {
                broker_id,
                broker_epoch,
                reply,
            } => {
                let r = if !self.active {
                    Err(41)
                } else {
                    match self.ctx.broker_epoch(broker_id) {
                        None => Err(102),
                        Some(e) if e != broker_epoch => Err(77),
                        Some(_) => {
                            match samsa_common::zk::admin::allocate_producer_id_block(
                                &self.zk, broker_id,
                            )
                            .await
                            {
                                Ok(b) => {
                                    Ok((b.block_start, (b.block_end - b.block_start + 1) as i32))
                                }
                                Err(e) => {
                                    error!(error = %e, "producer id block allocation failed");
                                    Err(-1)
                                }
                            }
                        }
                    }
                };
                let _ = reply.send(r);
                return;
            }
            Event::TopicConfigChanged => {
                if !self.active {
                    return;
                }
                let r = self.trigger_online_partition_state_change().await;
                self.send_batch();
                r
            }
            Event::AutoRebalance { generation } => {
                if generation != self.generation || !self.active {
                    return;
                }
                let r = self.check_preferred_leaders(true).await;
                self.schedule_rebalance(self.cfg.leader_imbalance_check_interval);
                r
            }
            Event::Resync { generation } => {
                self.resync_pending = false;
                if generation != self.generation || !self.session_alive {
                    return;
                }
                self.resync().await
            }
            Event::SessionLost { generation } => {
                if generation == self.generation {
                    self.session_lost();
                }
                return;
            }
            Event::NewSession(zk) => {
                self.resign();
                self.generation += 1;
                self.zk = zk;
                self.session_alive = true;
                self.elect().await
            }
            Event::Shutdown(_) => return,
            #[cfg(test)]
            Event::TestPanic => panic!("test panic in the controller event loop"),
        };
        if let Err(e) = result {
            self.handle_error(e).await;
        }
    }

    /// Failed event: on a lost fence re-check `/controller` and resign if it moved; other
    /// errors while active make us resign and give the role up (Kafka's failover error path).
    async fn handle_error(&mut self, e: Error) {
        self.batch = RequestBatch::new();
        if e.is_controller_moved() {
            warn!("controller epoch fence failed; checking /controller");
            let _ = self.check_controller_moved().await;
            return;
        }
        if !self.session_alive || self.zk.is_terminated() {
            self.session_lost();
            return;
        }
        // Recoverable (e.g. ZooKeeper connection loss): the resync below re-reads everything.
        warn!(error = %e, "controller event failed; will re-read ZooKeeper state");
        if !self.resync_pending {
            self.resync_pending = true;
            let tx = self.events.clone();
            let generation = self.generation;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = tx.send(Event::Resync { generation });
            });
        }
    }

    /// Re-run the handler of every watch that is not armed (handlers diff against the
    /// context, so re-running them is harmless).
    async fn resync(&mut self) -> Result<()> {
        let mut keys = vec![WatchKey::Controller];
        if self.active {
            keys.extend([
                WatchKey::BrokerIds,
                WatchKey::Topics,
                WatchKey::DeleteTopics,
                WatchKey::IsrChangeNotification,
                WatchKey::LogDirEventNotification,
                WatchKey::PreferredReplicaElection,
                WatchKey::ReassignPartitions,
            ]);
            keys.extend(self.ctx.all_topics.iter().cloned().map(WatchKey::Topic));
            keys.extend(self.ctx.live_brokers.keys().copied().map(WatchKey::Broker));
        }
        for key in keys {
            if !self.armed.contains(&key) {
                self.on_watch(key).await?;
            }
        }
        Ok(())
    }

    fn session_lost(&mut self) {
        if self.session_alive {
            warn!("ZooKeeper session lost; controller resigns until a new session is provided");
        }
        self.session_alive = false;
        self.resign();
        self.active_id = None;
        self.publish();
    }

    pub(crate) fn publish(&self) {
        let _ = self.status.send(ControllerStatus {
            active: self.active,
            controller_id: self.active_id,
            epoch: if self.active { self.ctx.epoch } else { 0 },
        });
    }

    /// Send everything collected in the batch.
    pub(crate) fn send_batch(&mut self) {
        let listener = self.cfg.leader_listener().to_string();
        self.batch
            .send(&self.ctx, &self.channels, self.cfg.broker_id, &listener);
    }

    // ------------------------------------------------------------------ watches

    fn arm(&mut self, key: WatchKey, w: ZkWatch) {
        self.armed.insert(key.clone());
        let tx = self.events.clone();
        let generation = self.generation;
        tokio::spawn(async move {
            let event = w.changed().await;
            let _ = tx.send(Event::Watch {
                generation,
                key,
                event,
            });
        });
    }

    /// Read a znode's data, arming a data watch unless one is pending.
    pub(crate) async fn get_watched(
        &mut self,
        key: WatchKey,
        path: &str,
    ) -> Result<Option<(Vec<u8>, samsa_common::zk::session::Stat)>> {
        if self.armed.contains(&key) {
            return Ok(self.zk.get(path).await?);
        }
        let (d, w) = self.zk.get_and_watch(path).await?;
        self.arm(key, w);
        Ok(d)
    }

    pub(crate) async fn children_watched(
        &mut self,
        key: WatchKey,
        path: &str,
    ) -> Result<Vec<String>> {
        if self.armed.contains(&key) {
            return Ok(self.zk.children(path).await?.unwrap_or_default());
        }
        let (c, w) = self.zk.children_and_watch(path).await?;
        self.arm(key, w);
        Ok(c.unwrap_or_default())
    }

    pub(crate) async fn exists_watched(
        &mut self,
        key: WatchKey,
        path: &str,
    ) -> Result<Option<samsa_common::zk::session::Stat>> {
        if self.armed.contains(&key) {
            return Ok(self.zk.exists(path).await?);
        }
        let (s, w) = self.zk.exists_and_watch(path).await?;
        self.arm(key, w);
        Ok(s)
    }

    /// Forget armed watches (they belong to the previous generation).
    pub(crate) fn reset_watches(&mut self) {
        self.armed.clear();
    }

    async fn on_watch(&mut self, key: WatchKey) -> Result<()> {
        if key == WatchKey::Controller {
            return self.on_controller_change().await;
        }
        if !self.active {
            return Ok(());
        }
        let r = match key {
            WatchKey::Controller => Ok(()),
            WatchKey::BrokerIds => {
                let started = std::time::Instant::now();
                let r = self.on_broker_change().await;
                self.metrics.broker_change_processed(started.elapsed());
                r
            }
            WatchKey::Broker(id) => self.on_broker_modification(id).await,
            WatchKey::Topics => self.on_topic_change().await,
            WatchKey::Topic(t) => self.on_partition_modifications(&t).await,
            WatchKey::DeleteTopics => self.on_topic_deletion_request().await,
            WatchKey::IsrChangeNotification => self.on_isr_change_notification().await,
            WatchKey::LogDirEventNotification => self.on_log_dir_event().await,
            WatchKey::PreferredReplicaElection => self.on_preferred_replica_election_znode().await,
            WatchKey::ReassignPartitions => self.on_reassign_partitions_znode().await,
        };
        self.send_batch();
        r
    }

    pub(crate) fn schedule_rebalance(&self, after: Duration) {
        if !self.cfg.auto_leader_rebalance_enable {
            return;
        }
        let tx = self.events.clone();
        let generation = self.generation;
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(Event::AutoRebalance { generation });
        });
    }

    // ------------------------------------------------------------------ failover

    /// Kafka's `onControllerFailover`, run right after winning the election.
    pub(crate) async fn on_controller_failover(&mut self) -> Result<()> {
        info!(
            broker = self.cfg.broker_id,
            epoch = self.ctx.epoch,
            "became the active controller"
        );
        self.ensure_feature_znode().await?;
        // Watches on the admin/notification roots.
        let delete_markers = self
            .children_watched(WatchKey::DeleteTopics, DeleteTopicsZNode::PATH)
            .await?;
        let isr_notes = self
            .children_watched(
                WatchKey::IsrChangeNotification,
                IsrChangeNotificationZNode::PATH,
            )
            .await?;
        let logdir_notes = self
            .children_watched(
                WatchKey::LogDirEventNotification,
                LogDirEventNotificationZNode::PATH,
            )
            .await?;
        self.exists_watched(
            WatchKey::PreferredReplicaElection,
            PreferredReplicaElectionZNode::PATH,
        )
        .await?;
        self.exists_watched(WatchKey::ReassignPartitions, ReassignPartitionsZNode::PATH)
            .await?;
        // Notifications present at failover are deleted unprocessed.
        for c in &isr_notes {
            self.fenced_delete(&IsrChangeNotification::path(c)).await?;
        }
        for c in &logdir_notes {
            self.fenced_delete(&LogDirEventNotification::path(c))
                .await?;
        }

        self.load_context().await?;

        // Topics queued for deletion.
        let mut to_delete = BTreeSet::new();
        for t in delete_markers {
            if self.ctx.all_topics.contains(&t) && self.cfg.delete_topic_enable {
                to_delete.insert(t);
            } else {
                self.fenced_delete(&DeleteTopicsTopicZNode::path(&t))
                    .await?;
            }
        }
        for t in &to_delete {
            let reassigning = self
                .ctx
                .partitions_for_topic(t)
                .iter()
                .any(|tp| self.ctx.partitions_being_reassigned.contains(tp));
            let offline_replica = self.ctx.partitions_for_topic(t).iter().any(|tp| {
                self.ctx
                    .replicas(tp)
                    .iter()
                    .any(|r| !self.ctx.is_replica_online(*r, tp))
            });
            if reassigning || offline_replica {
                self.ctx.topics_ineligible_for_deletion.insert(t.clone());
            }
        }
        self.ctx.topics_to_delete = to_delete;

        // Brokers learn each other's endpoints first.
        let live = self.ctx.live_or_shutting_down_ids();
        self.batch.add_update_metadata(&self.ctx, &live, &[]);
        self.send_batch();

        self.replica_state_machine_startup().await?;
        self.partition_state_machine_startup().await?;
        self.send_batch();

        self.resume_reassignments_from_znode(true).await?;
        self.resume_deletions().await?;
        self.on_preferred_replica_election_znode().await?;
        self.send_batch();
        self.schedule_rebalance(Duration::from_secs(5));
        Ok(())
    }

    /// `/feature`: create `{"version":2,"status":1,"features":{}}` if missing, enable it if
    /// disabled; never delete it (brokers track its zkVersion as the feature epoch).
    async fn ensure_feature_znode(&mut self) -> Result<()> {
        let desired = FeatureZNode::enabled_empty();
        match self.zk.get(FeatureZNode::PATH).await? {
            None => match self
                .zk
                .create(
                    FeatureZNode::PATH,
                    &desired.encode(),
                    samsa_common::zk::session::CreateMode::Persistent,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_node_exists() => {}
                Err(e) => return Err(e.into()),
            },
            Some((d, _)) => {
                let existing = FeatureZNode::decode(&d);
                match existing {
                    Ok(f) if f.status == FeatureZNode::STATUS_ENABLED => {}
                    Ok(f) => {
                        let updated = FeatureZNode {
                            version: desired.version,
                            status: FeatureZNode::STATUS_ENABLED,
                            features: f.features,
                        };
                        self.zk
                            .set(FeatureZNode::PATH, &updated.encode(), None)
                            .await?;
                    }
                    Err(e) => warn!(error = %e, "unreadable /feature left untouched"),
                }
            }
        }
        Ok(())
    }

    /// Load brokers, topics, assignments and leadership from ZooKeeper, open broker channels.
    async fn load_context(&mut self) -> Result<()> {
        let ids = self
            .children_watched(WatchKey::BrokerIds, BrokerIdsZNode::PATH)
            .await?;
        for id in ids.iter().filter_map(|s| s.parse::<BrokerId>().ok()) {
            if let Some(b) = self.read_broker(id).await? {
                self.add_live_broker(b);
            }
        }
        let topics = self
            .children_watched(WatchKey::Topics, TopicsZNode::PATH)
            .await?;
        for t in topics {
            self.load_topic(&t).await?;
        }
        let partitions = self.ctx.all_partitions();
        for tp in partitions {
            self.refresh_leadership(&tp).await?;
        }
        Ok(())
    }

    /// Read `/brokers/ids/<id>` (with data watch): registration and epoch (czxid).
    pub(crate) async fn read_broker(&mut self, id: BrokerId) -> Result<Option<LiveBroker>> {
        let path = BrokerIdZNode::path(id);
        match self.get_watched(WatchKey::Broker(id), &path).await? {
            None => Ok(None),
            Some((d, stat)) => match BrokerInfo::decode(id, &d) {
                Ok(info) => Ok(Some(LiveBroker {
                    info,
                    epoch: stat.czxid,
                })),
                Err(e) => {
                    error!(broker = id, error = %e, "unreadable broker registration ignored");
                    Ok(None)
                }
            },
        }
    }

    pub(crate) fn add_live_broker(&mut self, b: LiveBroker) {
        let id = b.info.id;
        let addr = b
            .info
            .endpoint(&self.cfg.control_listener)
            .map(|e| (e.host.clone(), e.port));
        if addr.is_none() {
            error!(broker = id, listener = %self.cfg.control_listener, "broker has no endpoint for the control listener");
        }
        self.ctx.live_brokers.insert(id, b);
        self.channels.add_broker(id, addr);
    }

    pub(crate) fn remove_live_broker(&mut self, id: BrokerId) {
        self.ctx.live_brokers.remove(&id);
        self.ctx.shutting_down.remove(&id);
        self.ctx.replicas_on_offline_dirs.remove(&id);
        self.channels.remove_broker(id);
    }

    /// Read a topic znode (arming its data watch), assign a topic id if missing, and record
    /// its assignment. Returns the partition ids that were not known before.
    pub(crate) async fn load_topic(&mut self, topic: &str) -> Result<Vec<i32>> {
        let path = TopicZNode::path(topic);
        let Some((d, stat)) = self
            .get_watched(WatchKey::Topic(topic.to_string()), &path)
            .await?
        else {
            return Ok(Vec::new());
        };
        let mut znode = match TopicZNode::decode(topic, &d) {
            Ok(z) => z,
            Err(e) => {
                error!(topic, error = %e, "unreadable topic znode ignored");
                return Ok(Vec::new());
            }
        };
        if znode.topic_id.is_none() && self.cfg.topic_ids_supported() {
            znode.topic_id = Some(samsa_common::types::kafka_uuid::random_topic_id());
            self.fenced_set(&path, znode.encode(), Some(stat.version))
                .await?;
            info!(topic, "assigned topic id");
        }
        self.ctx.all_topics.insert(topic.to_string());
        if let Some(id) = znode.topic_id {
            self.ctx.topic_ids.insert(topic.to_string(), id);
        }
        let mut new = Vec::new();
        for (p, replicas) in &znode.partitions {
            let tp = TopicPartition::new(topic, *p);
            let known = self.ctx.assignment(&tp).is_some();
            if !known {
                new.push(*p);
                let a = ReplicaAssignment {
                    replicas: replicas.clone(),
                    adding: znode.adding_replicas.get(p).cloned().unwrap_or_default(),
                    removing: znode.removing_replicas.get(p).cloned().unwrap_or_default(),
                };
                self.ctx.set_assignment(&tp, a);
            }
        }
        Ok(new)
    }

    /// Re-read a partition's `state` znode into the context.
    pub(crate) async fn refresh_leadership(&mut self, tp: &TopicPartition) -> Result<()> {
        match self.zk.get_partition_state(tp).await {
            Ok(Some((z, v))) => {
                self.ctx.leadership.insert(
                    tp.clone(),
                    crate::context::LeaderIsrAndControllerEpoch::from_znode(&z, v),
                );
            }
            Ok(None) => {
                self.ctx.leadership.remove(tp);
            }
            Err(e) if matches!(e, samsa_common::error::Error::InvalidZnode { .. }) => {
                error!(partition = %tp, error = %e, "unreadable partition state");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    // ------------------------------------------------------------------ brokers

    /// Children of `/brokers/ids` changed: new, dead and bounced brokers (spec §3.5).
    async fn on_broker_change(&mut self) -> Result<()> {
        let ids: BTreeSet<BrokerId> = self
            .children_watched(WatchKey::BrokerIds, BrokerIdsZNode::PATH)
            .await?
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let mut current: BTreeMap<BrokerId, LiveBroker> = BTreeMap::new();
        for id in &ids {
            if let Some(b) = self.read_broker(*id).await? {
                current.insert(*id, b);
            }
        }
        let known: BTreeMap<BrokerId, BrokerEpoch> = self
            .ctx
            .live_brokers
            .iter()
            .map(|(id, b)| (*id, b.epoch))
            .collect();
        let new: Vec<BrokerId> = current
            .keys()
            .copied()
            .filter(|id| !known.contains_key(id))
            .collect();
        let dead: Vec<BrokerId> = known
            .keys()
            .copied()
            .filter(|id| !current.contains_key(id))
            .collect();
        let bounced: Vec<BrokerId> = current
            .iter()
            .filter(|(id, b)| known.get(id).is_some_and(|e| b.epoch > *e))
            .map(|(id, _)| *id)
            .collect();
        if new.is_empty() && dead.is_empty() && bounced.is_empty() {
            return Ok(());
        }
        info!(?new, ?dead, ?bounced, "broker change");
        for id in &dead {
            self.remove_live_broker(*id);
        }
        for id in &new {
            if let Some(b) = current.remove(id) {
                self.add_live_broker(b);
            }
        }
        if !new.is_empty() {
            self.on_broker_startup(&new).await?;
        }
        if !bounced.is_empty() {
            // A bounce is a failure followed by a startup (new broker epoch).
            for id in &bounced {
                self.remove_live_broker(*id);
            }
            self.on_broker_failure(&bounced).await?;
            for id in &bounced {
                if let Some(b) = current.remove(id) {
                    self.add_live_broker(b);
                }
            }
            self.on_broker_startup(&bounced).await?;
        }
        if !dead.is_empty() {
            self.on_broker_failure(&dead).await?;
        }
        Ok(())
    }

    /// `/brokers/ids/<id>` data changed (e.g. new endpoints): tell everyone.
    async fn on_broker_modification(&mut self, id: BrokerId) -> Result<()> {
        let Some(b) = self.read_broker(id).await? else {
            return Ok(());
        };
        let changed = self
            .ctx
            .live_brokers
            .get(&id)
            .is_some_and(|old| old.epoch == b.epoch && old.info.endpoints != b.info.endpoints);
        if changed {
            info!(broker = id, "broker endpoints changed");
            self.add_live_broker(b);
            let all = self.ctx.live_or_shutting_down_ids();
            self.batch.add_update_metadata(&self.ctx, &all, &[]);
        }
        Ok(())
    }

    /// Kafka's `onBrokerStartup`.
    async fn on_broker_startup(&mut self, new: &[BrokerId]) -> Result<()> {
        for b in new {
            self.ctx.replicas_on_offline_dirs.remove(b);
        }
        let existing: Vec<BrokerId> = self
            .ctx
            .live_or_shutting_down_ids()
            .into_iter()
            .filter(|b| !new.contains(b))
            .collect();
        self.batch.add_update_metadata(&self.ctx, &existing, &[]);
        let all_partitions: Vec<TopicPartition> = self.ctx.leadership.keys().cloned().collect();
        self.batch
            .add_update_metadata(&self.ctx, new, &all_partitions);
        self.send_batch();

        let mut replicas = Vec::new();
        for b in new {
            for tp in self.ctx.partitions_on_broker(*b) {
                if !self.ctx.is_topic_queued_for_deletion(&tp.topic) {
                    replicas.push((tp, *b));
                }
            }
        }
        self.replicas_to_state(&replicas, ReplicaState::Online)
            .await?;
        self.trigger_online_partition_state_change().await?;
        self.send_batch();

        self.resume_reassignments_for_brokers(new).await?;
        let deleting: Vec<String> = self
            .ctx
            .topics_to_delete
            .iter()
            .filter(|t| {
                self.ctx
                    .partitions_for_topic(t)
                    .iter()
                    .any(|tp| self.ctx.replicas(tp).iter().any(|r| new.contains(r)))
            })
            .cloned()
            .collect();
        if !deleting.is_empty() {
            for t in &deleting {
                self.ctx.topics_ineligible_for_deletion.remove(t);
            }
            self.resume_deletions().await?;
        }
        Ok(())
    }

    /// Kafka's `onBrokerFailure` / `onReplicasBecomeOffline`.
    async fn on_broker_failure(&mut self, dead: &[BrokerId]) -> Result<()> {
        for b in dead {
            self.ctx.shutting_down.remove(b);
        }
        let mut offline_replicas = Vec::new();
        for b in dead {
            for tp in self.ctx.partitions_on_broker(*b) {
                offline_replicas.push((tp, *b));
            }
        }
        self.on_replicas_become_offline(offline_replicas).await
    }

    pub(crate) async fn on_replicas_become_offline(
        &mut self,
        replicas: Vec<(TopicPartition, BrokerId)>,
    ) -> Result<()> {
        let (for_deletion, not_for_deletion): (Vec<_>, Vec<_>) = replicas
            .into_iter()
            .partition(|(tp, _)| self.ctx.is_topic_queued_for_deletion(&tp.topic));
        let offline_leader: Vec<TopicPartition> = self
            .ctx
            .leadership
            .iter()
            .filter(|(tp, l)| {
                !self.ctx.is_topic_queued_for_deletion(&tp.topic)
                    && !self.ctx.is_replica_online(l.leader_and_isr.leader, tp)
                    && self.ctx.partition_state(tp) != PartitionState::New
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in &offline_leader {
            self.ctx
                .partition_states
                .insert(tp.clone(), PartitionState::Offline);
        }
        self.trigger_online_partition_state_change().await?;
        self.replicas_to_state(&not_for_deletion, ReplicaState::Offline)
            .await?;
        if !for_deletion.is_empty() {
            self.fail_replica_deletion(&for_deletion).await?;
        }
        if offline_leader.is_empty() {
            let all = self.ctx.live_or_shutting_down_ids();
            self.batch.add_update_metadata(&self.ctx, &all, &[]);
        }
        self.send_batch();
        Ok(())
    }

    // ------------------------------------------------------------------ topics

    /// Children of `/brokers/topics` changed: create new topics, forget vanished ones.
    async fn on_topic_change(&mut self) -> Result<()> {
        let topics: BTreeSet<String> = self
            .children_watched(WatchKey::Topics, TopicsZNode::PATH)
            .await?
            .into_iter()
            .collect();
        let gone: Vec<String> = self
            .ctx
            .all_topics
            .iter()
            .filter(|t| !topics.contains(*t))
            .cloned()
            .collect();
        for t in gone {
            self.ctx.remove_topic(&t);
        }
        let new: Vec<String> = topics
            .into_iter()
            .filter(|t| !self.ctx.all_topics.contains(t))
            .collect();
        let mut new_partitions = Vec::new();
        for t in &new {
            for p in self.load_topic(t).await? {
                new_partitions.push(TopicPartition::new(t.clone(), p));
            }
        }
        if !new_partitions.is_empty() {
            info!(topics = ?new, "new topics");
            self.on_new_partition_creation(&new_partitions).await?;
        }
        Ok(())
    }

    /// A topic znode changed: only new partition indexes are acted on (spec §3.4).
    async fn on_partition_modifications(&mut self, topic: &str) -> Result<()> {
        if !self.ctx.all_topics.contains(topic) {
            return Ok(());
        }
        let path = TopicZNode::path(topic);
        let Some((d, stat)) = self
            .get_watched(WatchKey::Topic(topic.to_string()), &path)
            .await?
        else {
            return Ok(());
        };
        let Ok(mut znode) = TopicZNode::decode(topic, &d) else {
            return Ok(());
        };
        // An old tool rewrote the znode without the topic id: put the known id back, or the
        // next controller would assign a new one (brokers then see INCONSISTENT_TOPIC_ID).
        if znode.topic_id.is_none() && self.cfg.topic_ids_supported() {
            if let Some(id) = self.ctx.topic_ids.get(topic).copied() {
                znode.topic_id = Some(id);
                if !self.ctx.is_topic_queued_for_deletion(topic) {
                    self.fenced_set(&path, znode.encode(), Some(stat.version))
                        .await?;
                    info!(topic, "restored topic id dropped by a znode rewrite");
                    return Box::pin(self.on_partition_modifications(topic)).await;
                }
            }
        }
        let added: Vec<i32> = znode
            .partitions
            .keys()
            .copied()
            .filter(|p| {
                self.ctx
                    .assignment(&TopicPartition::new(topic, *p))
                    .is_none()
            })
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        if self.ctx.is_topic_queued_for_deletion(topic) {
            // Restore the znode to the partitions we know.
            warn!(
                topic,
                "partitions added to a topic queued for deletion; reverting"
            );
            let mut restored = znode.clone();
            restored.partitions.retain(|p, _| {
                self.ctx
                    .assignment(&TopicPartition::new(topic, *p))
                    .is_some()
            });
            if restored.topic_id.is_none() {
                restored.topic_id = self.ctx.topic_ids.get(topic).copied();
            }
            self.fenced_set(&path, restored.encode(), Some(stat.version))
                .await?;
            return Ok(());
        }
        let mut tps = Vec::new();
        for p in added {
            let tp = TopicPartition::new(topic, p);
            let replicas = znode.partitions.get(&p).cloned().unwrap_or_default();
            self.ctx
                .set_assignment(&tp, ReplicaAssignment::new(replicas));
            tps.push(tp);
        }
        info!(topic, partitions = ?tps.iter().map(|t| t.partition).collect::<Vec<_>>(), "new partitions");
        self.on_new_partition_creation(&tps).await
    }

    /// Kafka's `onNewPartitionCreation`.
    pub(crate) async fn on_new_partition_creation(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        for tp in partitions {
            self.ctx
                .partition_states
                .insert(tp.clone(), PartitionState::New);
        }
        let replicas: Vec<(TopicPartition, BrokerId)> = partitions
            .iter()
            .flat_map(|tp| {
                self.ctx
                    .replicas(tp)
                    .into_iter()
                    .map(move |r| (tp.clone(), r))
            })
            .collect();
        self.replicas_to_state(&replicas, ReplicaState::New).await?;
        self.partitions_to_online(
            partitions,
            ElectionStrategy::Offline {
                allow_unclean: false,
            },
        )
        .await?;
        self.replicas_to_state(&replicas, ReplicaState::Online)
            .await?;
        self.send_batch();
        Ok(())
    }

    // ------------------------------------------------------------------ notifications

    /// Legacy ISR change notifications: refresh the partitions, tell every broker, delete.
    async fn on_isr_change_notification(&mut self) -> Result<()> {
        let children = self
            .children_watched(
                WatchKey::IsrChangeNotification,
                IsrChangeNotificationZNode::PATH,
            )
            .await?;
        let mut partitions = BTreeSet::new();
        for c in &children {
            let path = IsrChangeNotification::path(c);
            if let Some((d, _)) = self.zk.get(&path).await? {
                if let Ok(n) = IsrChangeNotification::decode(&d) {
                    partitions.extend(n.partitions);
                }
            }
        }
        let partitions: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| self.ctx.assignment(tp).is_some())
            .collect();
        for tp in &partitions {
            self.refresh_leadership(tp).await?;
        }
        let all = self.ctx.live_or_shutting_down_ids();
        self.batch.add_update_metadata(&self.ctx, &all, &partitions);
        self.send_batch();
        for tp in &partitions {
            self.maybe_complete_reassignment(tp).await?;
        }
        for c in &children {
            self.fenced_delete(&IsrChangeNotification::path(c)).await?;
        }
        Ok(())
    }

    /// Log-dir failure notifications: re-send LeaderAndIsr for every replica on those
    /// brokers; KAFKA_STORAGE_ERROR replies then mark the replicas offline.
    async fn on_log_dir_event(&mut self) -> Result<()> {
        let children = self
            .children_watched(
                WatchKey::LogDirEventNotification,
                LogDirEventNotificationZNode::PATH,
            )
            .await?;
        let mut brokers = BTreeSet::new();
        for c in &children {
            if let Some((d, _)) = self.zk.get(&LogDirEventNotification::path(c)).await? {
                if let Ok(n) = LogDirEventNotification::decode(&d) {
                    brokers.insert(n.broker);
                }
            }
        }
        let mut replicas = Vec::new();
        for b in brokers {
            if self.ctx.live_brokers.contains_key(&b) {
                for tp in self.ctx.partitions_on_broker(b) {
                    replicas.push((tp, b));
                }
            }
        }
        self.replicas_to_state(&replicas, ReplicaState::Online)
            .await?;
        self.send_batch();
        for c in &children {
            self.fenced_delete(&LogDirEventNotification::path(c))
                .await?;
        }
        Ok(())
    }

    /// LeaderAndIsr replies with KAFKA_STORAGE_ERROR mark replicas offline; StopReplica replies
    /// drive topic deletion.
    async fn on_control_response(&mut self, broker: BrokerId, resp: ControlResponse) -> Result<()> {
        match resp {
            ControlResponse::LeaderAndIsr(r) => {
                // Kafka's `processLeaderAndIsrResponseReceived`: KAFKA_STORAGE_ERROR marks the
                // replica offline, NONE marks it online again.
                let mut offline = Vec::new();
                let mut online = Vec::new();
                let topic_by_id: BTreeMap<uuid::Uuid, String> = self
                    .ctx
                    .topic_ids
                    .iter()
                    .map(|(t, id)| (*id, t.clone()))
                    .collect();
                for t in &r.topics {
                    if let Some(name) = topic_by_id.get(&t.topic_id) {
                        for p in &t.partition_errors {
                            let tp = TopicPartition::new(name.clone(), p.partition_index);
                            match p.error_code {
                                56 => offline.push(tp),
                                0 => online.push(tp),
                                _ => {}
                            }
                        }
                    }
                }
                for p in &r.partition_errors {
                    let tp = TopicPartition::new(p.topic_name.0.to_string(), p.partition_index);
                    match p.error_code {
                        56 => offline.push(tp),
                        0 => online.push(tp),
                        _ => {}
                    }
                }
                if let Some(set) = self.ctx.replicas_on_offline_dirs.get_mut(&broker) {
                    for tp in &online {
                        set.remove(tp);
                    }
                }
                if offline.is_empty() {
                    return Ok(());
                }
                let set = self.ctx.replicas_on_offline_dirs.entry(broker).or_default();
                let newly: Vec<TopicPartition> = offline
                    .into_iter()
                    .filter(|tp| set.insert(tp.clone()))
                    .collect();
                if !newly.is_empty() {
                    warn!(
                        broker,
                        count = newly.len(),
                        "replicas on an offline log dir"
                    );
                    self.on_replicas_become_offline(
                        newly.into_iter().map(|tp| (tp, broker)).collect(),
                    )
                    .await?;
                }
                Ok(())
            }
            ControlResponse::StopReplica { resp, deleted } => {
                self.on_stop_replica_deletion_response(broker, resp, deleted)
                    .await
            }
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
