//! The ZooKeeper session wrapper.
//!
//! [`ZkSession`] is one ZooKeeper session (cheap to clone; clones share the session). It hides the
//! `zookeeper-client` API behind the operations Kafka's `KafkaZkClient` needs: plain reads/writes
//! with versions, recursive create/delete, one-shot watches delivered as futures, persistent
//! watches as streams, `multi` (incl. controller-epoch fenced writes) and typed helpers over
//! [`crate::zk::znodes`].
//!
//! Session life: a session that expires never comes back (terminal state). Whoever owns the broker's
//! ZooKeeper life waits on [`ZkSession::expired`], opens a fresh session with
//! [`ZkSession::reconnect`], re-registers the broker and re-runs the controller election — as Kafka
//! does on `Expired`. Every node is created with open ACLs (`zookeeper.set.acl=false`).
//!
//! Connection loss is not session loss: as Kafka's `ZooKeeperClient.retryRequestsUntilConnected`,
//! reads (and the idempotent `mkdir -p`) that fail because the connection dropped or stopped
//! answering wait until the client is connected again and are re-sent, until the session ends.
//! A slow ZooKeeper is therefore never fatal to a caller, start-up included. Writes are not
//! re-sent here: a lost answer to a write leaves its outcome unknown, and the callers that can
//! tell (checked ephemerals, versioned updates) decide what to do.

use std::collections::BTreeMap;
use std::time::Duration;

use zookeeper_client as zk;
pub use zookeeper_client::{CreateMode, EventType, SessionState, Stat, WatchedEvent};

use crate::error::{Error, Result};
use crate::types::{BrokerEpoch, BrokerId, ControllerEpoch, TopicPartition};
use crate::zk::znodes::*;

fn opts(mode: CreateMode) -> zk::CreateOptions<'static> {
    mode.with_acls(zk::Acls::anyone_all())
}

/// True for failures of the connection rather than answers of the server: the request may
/// not have been seen, and the session may still be alive.
fn is_connection_error(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::Custom(_)
    )
}

/// Settings of a session (from `zookeeper.connect`, `zookeeper.session.timeout.ms`,
/// `zookeeper.connection.timeout.ms`).
#[derive(Clone, Debug)]
pub struct ZkConfig {
    /// `host:port[,host:port...][/chroot]`.
    pub connect: String,
    pub session_timeout: Duration,
    pub connection_timeout: Duration,
}

impl ZkConfig {
    pub fn new(connect: impl Into<String>, session_timeout: Duration) -> Self {
        Self {
            connect: connect.into(),
            session_timeout,
            connection_timeout: session_timeout,
        }
    }

    /// `(hosts, chroot)`; chroot is everything from the first `/` (None if absent or `/`).
    pub fn split_chroot(&self) -> (&str, Option<&str>) {
        match self.connect.find('/') {
            Some(i) => {
                let chroot = self.connect[i..].trim_end_matches('/');
                (
                    &self.connect[..i],
                    if chroot.is_empty() {
                        None
                    } else {
                        Some(chroot)
                    },
                )
            }
            None => (&self.connect, None),
        }
    }
}

/// A one-shot watch: resolves once, on the watched change or on session loss/expiry.
#[derive(Debug)]
pub struct ZkWatch(zk::OneshotWatcher);

impl ZkWatch {
    /// Wait for the event. Event type `Session` with state `Expired`/`Closed` means the session ended.
    pub async fn changed(self) -> WatchedEvent {
        self.0.changed().await
    }
}

/// A persistent (optionally recursive) watch: a stream of events until the session ends.
#[derive(Debug)]
pub struct ZkPersistentWatch {
    inner: zk::PersistentWatcher,
    ended: bool,
}

impl ZkPersistentWatch {
    /// Next event; `None` once the session has ended (expired/closed/auth failed).
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        if self.ended {
            return None;
        }
        let ev = self.inner.changed().await;
        if ev.event_type == EventType::Session
            && matches!(
                ev.session_state,
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
            )
        {
            // The library panics on a second call after a terminal event.
            self.ended = true;
        }
        Some(ev)
    }
}

/// One operation of a [`ZkSession::multi`] transaction.
#[derive(Clone, Debug)]
pub enum ZkOp {
    Check {
        path: String,
        version: i32,
    },
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        /// `None` = any version.
        version: Option<i32>,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
}

impl ZkOp {
    pub fn path(&self) -> &str {
        match self {
            ZkOp::Check { path, .. }
            | ZkOp::Create { path, .. }
            | ZkOp::SetData { path, .. }
            | ZkOp::Delete { path, .. } => path,
        }
    }

    pub fn create(path: impl Into<String>, data: Vec<u8>, mode: CreateMode) -> Self {
        ZkOp::Create {
            path: path.into(),
            data,
            mode,
        }
    }

    pub fn set(path: impl Into<String>, data: Vec<u8>, version: Option<i32>) -> Self {
        ZkOp::SetData {
            path: path.into(),
            data,
            version,
        }
    }

    pub fn delete(path: impl Into<String>, version: Option<i32>) -> Self {
        ZkOp::Delete {
            path: path.into(),
            version,
        }
    }
}

/// Result of one op of a successful [`ZkSession::multi`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkOpResult {
    Check,
    Create { path: String, stat: Stat },
    SetData { stat: Stat },
    Delete,
}

/// Result of a checked ephemeral create ([`ZkSession::create_checked_ephemeral`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EphemeralCreated {
    /// czxid of the node (the broker epoch for `/brokers/ids/<id>`).
    pub czxid: i64,
    /// Data version after the create (1 when written as create + setData).
    pub version: i32,
}

/// One ZooKeeper session (see module docs). Clones share the session.
#[derive(Clone, Debug)]
pub struct ZkSession {
    client: zk::Client,
    config: ZkConfig,
}

impl ZkSession {
    /// Connect as Kafka does: create the chroot (if any) with a non-chrooted session first, then
    /// open the chrooted session. Fails after `connection_timeout` if no server answers.
    pub async fn connect(config: &ZkConfig) -> Result<Self> {
        let (hosts, chroot) = config.split_chroot();
        if let Some(chroot) = chroot {
            let root = Self::open(hosts, config).await?;
            root.mkdir(chroot, &opts(CreateMode::Persistent))
                .await
                .map_err(|e| Error::zk(chroot, e))?;
            drop(root);
        }
        let client = Self::open(&config.connect, config).await?;
        Ok(Self {
            client,
            config: config.clone(),
        })
    }

    async fn open(connect: &str, config: &ZkConfig) -> Result<zk::Client> {
        let connector = zk::Client::connector()
            .with_session_timeout(config.session_timeout)
            .with_connection_timeout(config.connection_timeout);
        match tokio::time::timeout(config.connection_timeout, connector.connect(connect)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(Error::ZkSession(e)),
            Err(_) => Err(Error::ZkSession(zk::Error::Timeout)),
        }
    }

    /// A brand-new session with the same settings (after expiry).
    pub async fn reconnect(&self) -> Result<Self> {
        Self::connect(&self.config).await
    }

    pub fn config(&self) -> &ZkConfig {
        &self.config
    }

    /// ZooKeeper session id (the `ephemeralOwner` of our ephemeral nodes).
    pub fn session_id(&self) -> i64 {
        self.client.session_id().0
    }

    /// Session id + password, to re-attach a second client to this session (tests use it to
    /// force an expiry).
    pub fn session_info(&self) -> zk::SessionInfo {
        self.client.session().clone()
    }

    /// Current state (SyncConnected, Disconnected, Expired ...).
    pub fn state(&self) -> SessionState {
        self.client.state()
    }

    /// True once the session reached a terminal state (expired, closed, auth failed).
    pub fn is_terminated(&self) -> bool {
        matches!(
            self.state(),
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
        )
    }

    /// Stream of session state changes.
    pub fn state_watcher(&self) -> zk::StateWatcher {
        self.client.state_watcher()
    }

    /// Resolves when the session ends (expired/closed/auth failed) and returns that state.
    pub async fn expired(&self) -> SessionState {
        let mut w = self.client.state_watcher();
        loop {
            let s = w.state();
            if matches!(
                s,
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
            ) {
                return s;
            }
            w.changed().await;
        }
    }

    /// Escape hatch to the underlying client.
    pub fn client(&self) -> &zk::Client {
        &self.client
    }

    /// Run a read until it gets an answer from the server: on a connection error, wait until
    /// the client is connected again and re-send; give up only when the session has ended
    /// (then the error is the session's). See the module docs.
    async fn until_answered<T, F, Fut>(&self, mut op: F) -> std::result::Result<T, zk::Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, zk::Error>>,
    {
        loop {
            match op().await {
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(error = %e, "zookeeper connection lost; re-sending when reconnected");
                    if let Some(end) = self.wait_connected().await {
                        return Err(end);
                    }
                }
                other => return other,
            }
        }
    }

    /// Wait until the client is connected; `Some(error)` if the session ended instead.
    async fn wait_connected(&self) -> Option<zk::Error> {
        let mut w = self.client.state_watcher();
        loop {
            match w.state() {
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => return None,
                SessionState::Expired => return Some(zk::Error::SessionExpired),
                SessionState::Closed => return Some(zk::Error::ClientClosed),
                SessionState::AuthFailed => return Some(zk::Error::AuthFailed),
                _ => {}
            }
            w.changed().await;
        }
    }

    // ------------------------------------------------------------------ raw operations

    /// Create a node. Returns its stat and actual path (with the 10-digit suffix if sequential).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<(Stat, String)> {
        let (stat, seq) = self
            .client
            .create(path, data, &opts(mode))
            .await
            .map_err(|e| Error::zk(path, e))?;
        let actual = if matches!(
            mode,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        ) {
            format!("{path}{seq}")
        } else {
            path.to_string()
        };
        Ok((stat, actual))
    }

    /// Create a node, creating missing parents (persistent, empty) first, as Kafka's
    /// `createRecursive`. NODEEXISTS on `path` itself is returned as an error.
    pub async fn create_recursive(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<(Stat, String)> {
        match self.create(path, data, mode).await {
            Err(e) if e.is_no_node() => {
                if let Some(i) = path.rfind('/') {
                    if i > 0 {
                        self.ensure_path(&path[..i]).await?;
                    }
                }
                self.create(path, data, mode).await
            }
            other => other,
        }
    }

    /// `mkdir -p`: create `path` and its parents as persistent empty nodes if missing.
    pub async fn ensure_path(&self, path: &str) -> Result<()> {
        let options = opts(CreateMode::Persistent);
        self.until_answered(|| self.client.mkdir(path, &options))
            .await
            .map_err(|e| Error::zk(path, e))
    }

    /// Data and stat; `None` if the node does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<(Vec<u8>, Stat)>> {
        match self.until_answered(|| self.client.get_data(path)).await {
            Ok(v) => Ok(Some(v)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(Error::zk(path, e)),
        }
    }

    /// Data and stat plus a watch: data change/deletion if it exists, creation if it does not
    /// (Kafka's "exists + data" watch registration).
    pub async fn get_and_watch(&self, path: &str) -> Result<(Option<(Vec<u8>, Stat)>, ZkWatch)> {
        loop {
            match self
                .until_answered(|| self.client.get_and_watch_data(path))
                .await
            {
                Ok((d, s, w)) => return Ok((Some((d, s)), ZkWatch(w))),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(Error::zk(path, e)),
            }
            let (stat, w) = self
                .until_answered(|| self.client.check_and_watch_stat(path))
                .await
                .map_err(|e| Error::zk(path, e))?;
            if stat.is_none() {
                return Ok((None, ZkWatch(w)));
            }
            // Created between the two calls: read again (that exists-watch just lapses).
        }
    }

    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.until_answered(|| self.client.check_stat(path))
            .await
            .map_err(|e| Error::zk(path, e))
    }

    /// Stat plus a watch on creation, deletion and data change.
    pub async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, ZkWatch)> {
        let (s, w) = self
            .until_answered(|| self.client.check_and_watch_stat(path))
            .await
            .map_err(|e| Error::zk(path, e))?;
        Ok((s, ZkWatch(w)))
    }

    /// setData; `version: None` = unconditional. BADVERSION / NONODE come back as errors.
    pub async fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        self.client
            .set_data(path, data, version)
            .await
            .map_err(|e| Error::zk(path, e))
    }

    /// Delete one node. `Ok(false)` if it did not exist.
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<bool> {
        match self.client.delete(path, version).await {
            Ok(()) => Ok(true),
            Err(zk::Error::NoNode) => Ok(false),
            Err(e) => Err(Error::zk(path, e)),
        }
    }

    /// Delete a node and everything below it (children first), as Kafka's `deleteRecursive`.
    pub async fn delete_recursive(&self, path: &str) -> Result<()> {
        // Iterative post-order walk; retries if children appear concurrently.
        for _ in 0..10 {
            let Some(children) = self.children(path).await? else {
                return Ok(());
            };
            for c in children {
                let child = format!("{}/{}", path.trim_end_matches('/'), c);
                Box::pin(self.delete_recursive(&child)).await?;
            }
            match self.client.delete(path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => return Ok(()),
                Err(zk::Error::NotEmpty) => continue,
                Err(e) => return Err(Error::zk(path, e)),
            }
        }
        Err(Error::zk(path, zk::Error::NotEmpty))
    }

    /// Children names; `None` if the node does not exist.
    pub async fn children(&self, path: &str) -> Result<Option<Vec<String>>> {
        match self
            .until_answered(|| self.client.list_children(path))
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(Error::zk(path, e)),
        }
    }

    /// Children plus a one-shot children watch. If the node does not exist, `None` and an
    /// exists watch (fires on creation).
    pub async fn children_and_watch(&self, path: &str) -> Result<(Option<Vec<String>>, ZkWatch)> {
        loop {
            match self
                .until_answered(|| self.client.list_and_watch_children(path))
                .await
            {
                Ok((c, w)) => return Ok((Some(c), ZkWatch(w))),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(Error::zk(path, e)),
            }
            let (stat, w) = self.exists_and_watch(path).await?;
            if stat.is_none() {
                return Ok((None, w));
            }
        }
    }

    /// A persistent watch (ZooKeeper ≥ 3.6) on `path` (and its subtree if `recursive`).
    pub async fn watch_persistent(&self, path: &str, recursive: bool) -> Result<ZkPersistentWatch> {
        let mode = if recursive {
            zk::AddWatchMode::PersistentRecursive
        } else {
            zk::AddWatchMode::Persistent
        };
        let inner = self
            .until_answered(|| self.client.watch(path, mode))
            .await
            .map_err(|e| Error::zk(path, e))?;
        Ok(ZkPersistentWatch {
            inner,
            ended: false,
        })
    }

    /// Atomic multi-op. On failure the error names the path of the failing op.
    pub async fn multi(&self, ops: &[ZkOp]) -> Result<Vec<ZkOpResult>> {
        let mut w = self.client.new_multi_writer();
        for op in ops {
            let r = match op {
                ZkOp::Check { path, version } => w.add_check_version(path, *version),
                ZkOp::Create { path, data, mode } => w.add_create(path, data, &opts(*mode)),
                ZkOp::SetData {
                    path,
                    data,
                    version,
                } => w.add_set_data(path, data, *version),
                ZkOp::Delete { path, version } => w.add_delete(path, *version),
            };
            r.map_err(|e| Error::zk(op.path(), e))?;
        }
        match w.commit().await {
            Ok(results) => Ok(results
                .into_iter()
                .map(|r| match r {
                    zk::MultiWriteResult::Check => ZkOpResult::Check,
                    zk::MultiWriteResult::Create { path, stat } => {
                        ZkOpResult::Create { path, stat }
                    }
                    zk::MultiWriteResult::SetData { stat } => ZkOpResult::SetData { stat },
                    _ => ZkOpResult::Delete,
                })
                .collect()),
            Err(zk::MultiWriteError::OperationFailed { index, source }) => Err(Error::zk(
                ops.get(index).map(ZkOp::path).unwrap_or("<multi>"),
                source,
            )),
            Err(zk::MultiWriteError::RequestFailed { source }) => Err(Error::ZkSession(source)),
        }
    }

    /// A controller write fenced by the controller epoch: `multi[check(/controller_epoch,
    /// epoch_zk_version), ops...]`. A failed check is [`Error::ControllerMoved`]; the returned
    /// results exclude the check.
    pub async fn fenced_multi(
        &self,
        epoch_zk_version: i32,
        ops: &[ZkOp],
    ) -> Result<Vec<ZkOpResult>> {
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(ZkOp::Check {
            path: ControllerEpochZNode::PATH.to_string(),
            version: epoch_zk_version,
        });
        all.extend_from_slice(ops);
        match self.multi(&all).await {
            Ok(mut r) => {
                r.remove(0);
                Ok(r)
            }
            Err(Error::Zk { path, source })
                if path == ControllerEpochZNode::PATH
                    && matches!(source, zk::Error::BadVersion | zk::Error::NoNode) =>
            {
                Err(Error::ControllerMoved)
            }
            Err(e) => Err(e),
        }
    }

    /// Kafka's checked ephemeral create (`KafkaZkClient.CheckedEphemeral`):
    /// `multi[create(path, EPHEMERAL, empty), setData(path, data, 0)]` so dataVersion is 1.
    /// NODEEXISTS: owned by this session → success; owned by `previous_session` (our session
    /// before an expiry, ZOOKEEPER-2985) → delete and retry; anyone else → NODEEXISTS error.
    /// A lost connection re-sends once reconnected (the create is idempotent for its owner).
    pub async fn create_checked_ephemeral(
        &self,
        path: &str,
        data: &[u8],
        previous_session: Option<i64>,
    ) -> Result<EphemeralCreated> {
        for _ in 0..10 {
            let ops = [
                ZkOp::create(path, Vec::new(), CreateMode::Ephemeral),
                ZkOp::set(path, data.to_vec(), Some(0)),
            ];
            match self.multi(&ops).await {
                Ok(results) => {
                    if let Some(ZkOpResult::SetData { stat }) = results.get(1) {
                        return Ok(EphemeralCreated {
                            czxid: stat.czxid,
                            version: stat.version,
                        });
                    }
                    // Fall back to a read if the server returned no stat.
                    if let Some(stat) = self.exists(path).await? {
                        return Ok(EphemeralCreated {
                            czxid: stat.czxid,
                            version: stat.version,
                        });
                    }
                }
                Err(e) if e.is_node_exists() => match self.exists(path).await? {
                    Some(stat) if stat.ephemeral_owner == self.session_id() => {
                        return Ok(EphemeralCreated {
                            czxid: stat.czxid,
                            version: stat.version,
                        })
                    }
                    Some(stat) if Some(stat.ephemeral_owner) == previous_session => {
                        self.delete(path, Some(stat.version)).await?;
                    }
                    Some(_) => return Err(e),
                    None => {}
                },
                // The answer was lost with the connection: the create may or may not have
                // happened, which the NODEEXISTS branch above sorts out on the next round.
                Err(e) if e.zk_code().is_some_and(is_connection_error) => {
                    if let Some(end) = self.wait_connected().await {
                        return Err(Error::zk(path, end));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Other(format!("could not create ephemeral {path}")))
    }

    // ------------------------------------------------------------------ typed helpers

    /// Create the persistent top-level paths every broker creates at start.
    pub async fn create_top_level_paths(&self) -> Result<()> {
        for p in PERSISTENT_ZK_PATHS {
            if self.exists(p).await?.is_none() {
                self.ensure_path(p).await?;
            }
        }
        Ok(())
    }

    pub async fn get_cluster_id(&self) -> Result<Option<String>> {
        match self.get(ClusterIdZNode::PATH).await? {
            Some((d, _)) => Ok(Some(ClusterIdZNode::decode(&d)?.id)),
            None => Ok(None),
        }
    }

    /// Create `/cluster/id` with `proposed` unless present; returns the id that won.
    pub async fn create_or_get_cluster_id(&self, proposed: &str) -> Result<String> {
        let z = ClusterIdZNode {
            id: proposed.to_string(),
        };
        match self
            .create_recursive(ClusterIdZNode::PATH, &z.encode(), CreateMode::Persistent)
            .await
        {
            Ok(_) => Ok(proposed.to_string()),
            Err(e) if e.is_node_exists() => self
                .get_cluster_id()
                .await?
                .ok_or_else(|| Error::Other("/cluster/id vanished".into())),
            Err(e) => Err(e),
        }
    }

    /// Active controller id from `/controller`, if any.
    pub async fn get_controller_id(&self) -> Result<Option<BrokerId>> {
        match self.get(ControllerZNode::PATH).await? {
            Some((d, _)) => Ok(Some(ControllerZNode::decode(&d)?.broker_id)),
            None => Ok(None),
        }
    }

    /// `(epoch, zkVersion)` of `/controller_epoch`, if it exists.
    pub async fn get_controller_epoch(&self) -> Result<Option<(ControllerEpoch, i32)>> {
        match self.get(ControllerEpochZNode::PATH).await? {
            Some((d, s)) => Ok(Some((ControllerEpochZNode::decode(&d)?, s.version))),
            None => Ok(None),
        }
    }

    /// Registration of one broker plus its epoch (czxid).
    pub async fn get_broker(&self, id: BrokerId) -> Result<Option<(BrokerInfo, BrokerEpoch)>> {
        match self.get(&BrokerIdZNode::path(id)).await? {
            Some((d, s)) => Ok(Some((BrokerInfo::decode(id, &d)?, s.czxid))),
            None => Ok(None),
        }
    }

    /// Registered broker ids, sorted.
    pub async fn get_broker_ids(&self) -> Result<Vec<BrokerId>> {
        let mut ids: Vec<BrokerId> = self
            .children(BrokerIdsZNode::PATH)
            .await?
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// All registered brokers with their epochs, sorted by id (vanished ones skipped).
    pub async fn get_all_brokers(&self) -> Result<Vec<(BrokerInfo, BrokerEpoch)>> {
        let mut out = Vec::new();
        for id in self.get_broker_ids().await? {
            if let Some(b) = self.get_broker(id).await? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Bump `/brokers/seqid` (creating it if missing) and return its new dataVersion.
    pub async fn generate_broker_sequence_id(&self) -> Result<i32> {
        loop {
            match self.set(BrokerSequenceIdZNode::PATH, &[], None).await {
                Ok(stat) => return Ok(stat.version),
                Err(e) if e.is_no_node() => {
                    match self
                        .create_recursive(BrokerSequenceIdZNode::PATH, &[], CreateMode::Persistent)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_node_exists() => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Topic names under `/brokers/topics`.
    pub async fn get_all_topics(&self) -> Result<Vec<String>> {
        Ok(self.children(TopicsZNode::PATH).await?.unwrap_or_default())
    }

    /// Assignment of a topic plus the znode stat.
    pub async fn get_topic(&self, topic: &str) -> Result<Option<(TopicZNode, Stat)>> {
        match self.get(&TopicZNode::path(topic)).await? {
            Some((d, s)) => Ok(Some((TopicZNode::decode(topic, &d)?, s))),
            None => Ok(None),
        }
    }

    /// Leader/ISR of a partition plus its zkVersion (the partition epoch).
    pub async fn get_partition_state(
        &self,
        tp: &TopicPartition,
    ) -> Result<Option<(TopicPartitionStateZNode, i32)>> {
        match self.get(&TopicPartitionStateZNode::path(tp)).await? {
            Some((d, s)) => Ok(Some((TopicPartitionStateZNode::decode(tp, &d)?, s.version))),
            None => Ok(None),
        }
    }

    /// `/config/<type>/<name>` as a map (empty if absent).
    pub async fn get_entity_config(
        &self,
        entity_type: &str,
        entity_name: &str,
    ) -> Result<BTreeMap<String, String>> {
        match self
            .get(&ConfigEntityZNode::path(entity_type, entity_name))
            .await?
        {
            Some((d, _)) => Ok(ConfigEntityZNode::decode(&d)?.config),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Topics marked for deletion (children of `/admin/delete_topics`).
    pub async fn get_topics_marked_for_deletion(&self) -> Result<Vec<String>> {
        Ok(self
            .children(DeleteTopicsZNode::PATH)
            .await?
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::TestZk;

    async fn wait_for<F, Fut>(what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !f().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn chroot_split() {
        let c = ZkConfig::new("a:1,b:2/kafka/x", Duration::from_secs(1));
        assert_eq!(c.split_chroot(), ("a:1,b:2", Some("/kafka/x")));
        let c = ZkConfig::new("a:1", Duration::from_secs(1));
        assert_eq!(c.split_chroot(), ("a:1", None));
        let c = ZkConfig::new("a:1/", Duration::from_secs(1));
        assert_eq!(c.split_chroot(), ("a:1", None));
    }

    /// Regression (fault drill): a broker restarted while ZooKeeper answered slowly exited on
    /// "no response from connection" from one start-up read. Reads sent while the server is
    /// frozen for longer than the client's connection timeout (2/5 of the session timeout) but
    /// shorter than the session timeout must be answered once it is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_wait_out_a_stalled_zookeeper() {
        let zkd = TestZk::start();
        let cfg = ZkConfig::new(zkd.connect_string(), Duration::from_secs(10));
        let s = ZkSession::connect(&cfg).await.expect("connect");
        s.create("/stall", b"v", CreateMode::Persistent)
            .await
            .expect("create");
        zkd.pause();
        let get = tokio::spawn({
            let s = s.clone();
            async move { s.get("/stall").await }
        });
        let list = tokio::spawn({
            let s = s.clone();
            async move { s.children("/").await }
        });
        // Frozen for 6 s: past the 4 s connection timeout, inside the 10 s session.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let gave_up_early = get.is_finished() || list.is_finished();
        zkd.resume();
        assert!(!gave_up_early, "a read gave up while ZooKeeper was frozen");
        let got = tokio::time::timeout(Duration::from_secs(30), get)
            .await
            .expect("get answered after resume")
            .expect("join")
            .expect("get ok");
        assert_eq!(got.map(|(d, _)| d), Some(b"v".to_vec()));
        let children = tokio::time::timeout(Duration::from_secs(30), list)
            .await
            .expect("list answered after resume")
            .expect("join")
            .expect("children ok")
            .unwrap_or_default();
        assert!(children.iter().any(|c| c == "stall"), "{children:?}");
        assert!(!s.is_terminated(), "session survived the stall");
    }

    /// A read on a session that has ended fails instead of waiting forever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_fail_once_the_session_expired() {
        let zkd = TestZk::start();
        let cfg = ZkConfig::new(zkd.connect_string(), Duration::from_secs(4));
        let s = ZkSession::connect(&cfg).await.expect("connect");
        zkd.expire_session(&s).await;
        wait_for("session expired", || async { s.is_terminated() }).await;
        let r = tokio::time::timeout(Duration::from_secs(20), s.get("/"))
            .await
            .expect("read returned");
        assert!(r.is_err(), "read on an expired session: {r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_zookeeper_session() {
        let zkd = TestZk::start();
        let cfg = ZkConfig::new(
            zkd.connect_string_with_chroot("/kafka"),
            Duration::from_secs(6),
        );
        let s = ZkSession::connect(&cfg).await.expect("connect");
        // The chroot exists when seen from the root.
        let root = ZkSession::connect(&ZkConfig::new(zkd.connect_string(), Duration::from_secs(6)))
            .await
            .expect("root");
        assert!(root.exists("/kafka").await.expect("exists").is_some());

        s.create_top_level_paths().await.expect("top level");
        for p in PERSISTENT_ZK_PATHS {
            assert!(
                root.exists(&format!("/kafka{p}"))
                    .await
                    .expect("e")
                    .is_some(),
                "{p}"
            );
        }
        assert!(root
            .exists("/kafka/config/client-metrics")
            .await
            .expect("e")
            .is_none());

        // Cluster id create-or-get.
        let id = s
            .create_or_get_cluster_id("Xk3kqKxGQ3O0qW2J8kq1aA")
            .await
            .expect("cid");
        assert_eq!(id, "Xk3kqKxGQ3O0qW2J8kq1aA");
        assert_eq!(s.create_or_get_cluster_id("other").await.expect("cid2"), id);

        // Sequence ids.
        let a = s.generate_broker_sequence_id().await.expect("seq");
        let b = s.generate_broker_sequence_id().await.expect("seq");
        assert_eq!((a, b), (1, 2));

        // get/set with versions, sequential create, recursive delete.
        let (st, _) = s
            .create_recursive("/x/y/z", b"v", CreateMode::Persistent)
            .await
            .expect("cr");
        assert_eq!(st.version, 0);
        assert!(s
            .set("/x/y/z", b"w", Some(5))
            .await
            .expect_err("bad")
            .is_bad_version());
        assert_eq!(
            s.set("/x/y/z", b"w", Some(0)).await.expect("set").version,
            1
        );
        let (_, p) = s
            .create(
                "/config/changes/config_change_",
                b"{}",
                CreateMode::PersistentSequential,
            )
            .await
            .expect("seq");
        assert_eq!(p, "/config/changes/config_change_0000000000");
        s.delete_recursive("/x").await.expect("delrec");
        assert!(s.exists("/x").await.expect("e").is_none());
        assert!(!s.delete("/x", None).await.expect("del none"));

        // One-shot watch on a node that does not exist yet fires on creation.
        let (none, w) = s.get_and_watch("/watched").await.expect("watch");
        assert!(none.is_none());
        root.create("/kafka/watched", b"1", CreateMode::Persistent)
            .await
            .expect("c");
        let ev = tokio::time::timeout(Duration::from_secs(10), w.changed())
            .await
            .expect("fired");
        assert_eq!(ev.event_type, EventType::NodeCreated);
        assert_eq!(ev.path, "/watched");
        let (kids, w) = s.children_and_watch("/brokers/ids").await.expect("cw");
        assert_eq!(kids, Some(vec![]));
        root.create("/kafka/brokers/ids/7", b"", CreateMode::Persistent)
            .await
            .expect("c");
        let ev = tokio::time::timeout(Duration::from_secs(10), w.changed())
            .await
            .expect("fired");
        assert_eq!(ev.event_type, EventType::NodeChildrenChanged);
        root.delete("/kafka/brokers/ids/7", None).await.expect("d");

        // Fenced multi: a stale epoch zkVersion is ControllerMoved and writes nothing.
        s.create(ControllerEpochZNode::PATH, b"0", CreateMode::Persistent)
            .await
            .expect("ce");
        let ok = s
            .fenced_multi(
                0,
                &[ZkOp::create(
                    "/fenced1",
                    b"a".to_vec(),
                    CreateMode::Persistent,
                )],
            )
            .await
            .expect("fenced ok");
        assert!(matches!(ok[0], ZkOpResult::Create { .. }));
        s.set(ControllerEpochZNode::PATH, b"1", None)
            .await
            .expect("bump");
        let err = s
            .fenced_multi(
                0,
                &[ZkOp::create(
                    "/fenced2",
                    b"a".to_vec(),
                    CreateMode::Persistent,
                )],
            )
            .await
            .expect_err("moved");
        assert!(matches!(err, Error::ControllerMoved), "{err:?}");
        assert!(s.exists("/fenced2").await.expect("e").is_none());

        // Checked ephemeral registration: dataVersion 1; a second session gets NODEEXISTS.
        let info = BrokerInfo::new(
            1,
            vec![EndPoint {
                listener_name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: SecurityProtocol::Plaintext,
            }],
            None,
            -1,
        );
        let created = s
            .create_checked_ephemeral(&info.path(), &info.encode(), None)
            .await
            .expect("register");
        assert_eq!(created.version, 1);
        let again = s
            .create_checked_ephemeral(&info.path(), &info.encode(), None)
            .await
            .expect("idempotent");
        assert_eq!(again.czxid, created.czxid);
        let other = ZkSession::connect(&cfg).await.expect("other");
        let err = other
            .create_checked_ephemeral(&info.path(), &info.encode(), None)
            .await
            .expect_err("dup");
        assert!(err.is_node_exists());
        let (got, epoch) = s.get_broker(1).await.expect("get").expect("some");
        assert_eq!(got.endpoints, info.endpoints);
        assert_eq!(epoch, created.czxid);
        assert_eq!(s.get_all_brokers().await.expect("all").len(), 1);

        // Forced expiry: ephemeral disappears, session reports Expired, a fresh one works.
        zkd.expire_session(&s).await;
        tokio::time::timeout(Duration::from_secs(30), s.expired())
            .await
            .expect("expired");
        assert!(s.is_terminated());
        wait_for("ephemeral gone", || async {
            other
                .exists(&BrokerIdZNode::path(1))
                .await
                .expect("e")
                .is_none()
        })
        .await;
        let fresh = s.reconnect().await.expect("fresh");
        assert_ne!(fresh.session_id(), s.session_id());
        let re = fresh
            .create_checked_ephemeral(&info.path(), &info.encode(), Some(s.session_id()))
            .await
            .expect("re-register");
        assert!(re.czxid > created.czxid);
    }
}
