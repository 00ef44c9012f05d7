//! The broker's ZooKeeper life (Kafka's `KafkaServer.startup` ZooKeeper steps, ZK mode).
//!
//! 1. [`prepare`] (before logs are loaded): connect (creating the chroot first), create the
//!    persistent top-level paths, get-or-create `/cluster/id`, check `meta.properties` in every
//!    log dir against it, resolve the broker id (config → meta.properties → `/brokers/seqid`),
//!    and (re)write `meta.properties` everywhere.
//! 2. [`ZkBroker::register`] (once listeners are bound): write `/brokers/ids/<id>` as a checked
//!    ephemeral (dataVersion 1); its czxid is the broker epoch. A live broker with the same id
//!    is a fatal start-up error.
//! 3. A background task waits for session expiry, opens a fresh session, re-registers (new
//!    czxid → new broker epoch), updates the [`BrokerContext`] and hands the new session to the
//!    renewal listeners ([`ZkBroker::on_session_renewed`]; the controller's `session_renewed`).
//! 4. [`ZkBroker::shutdown`] deletes our registration (clean shutdown).
//!
//! ## `meta.properties` (one per log dir)
//! The format is owned by [`MetaProperties`] (`log::manager`). Read at start: a present
//! `cluster.id` must equal `/cluster/id`, a present `broker.id` must equal the configured one
//! (if configured) and all dirs must agree; `version` must be 0. Written at start after the
//! checks, keeping keys Samsa does not manage.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use samsa_common::config::BrokerConfig;
use samsa_common::types::kafka_uuid;
use samsa_common::types::{BrokerEpoch, BrokerId};
use samsa_common::zk::session::{ZkConfig, ZkSession};
use samsa_common::zk::znodes::{BrokerIdZNode, BrokerInfo, EndPoint};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::broker::BrokerContext;
use crate::log::manager::{MetaProperties, META_PROPERTIES};

/// Start-up failure of the ZooKeeper steps; the message says what a human must fix.
#[derive(Debug, thiserror::Error)]
pub enum ZkBrokerError {
    #[error(transparent)]
    Common(#[from] samsa_common::error::Error),
    #[error("{0}")]
    Fatal(String),
    #[error("meta.properties in {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = ZkBrokerError> = std::result::Result<T, E>;

/// Kafka's `propagateLogDirEvent`: tells the controller that a log dir of `broker` failed by
/// creating `/log_dir_event_notification/log_dir_event_<seq>` (persistent sequential). The
/// controller re-sends LeaderAndIsr to every replica of the broker and treats those
/// answering KAFKA_STORAGE_ERROR as offline. Returns the created path.
pub async fn propagate_log_dir_event(
    session: &ZkSession,
    broker: BrokerId,
) -> samsa_common::error::Result<String> {
    use samsa_common::zk::session::CreateMode;
    use samsa_common::zk::znodes::LogDirEventNotification;
    let n = LogDirEventNotification {
        broker,
        event: LogDirEventNotification::LOG_DIR_FAILURE,
    };
    let (_, path) = session
        .create_recursive(
            &LogDirEventNotification::create_path(),
            &n.encode(),
            CreateMode::PersistentSequential,
        )
        .await?;
    Ok(path)
}

/// The ZooKeeper settings of a broker config.
pub fn zk_config(config: &BrokerConfig) -> ZkConfig {
    let ms = |v: i32| Duration::from_millis(u64::try_from(v.max(1)).unwrap_or(18_000));
    ZkConfig {
        connect: config.zookeeper_connect.clone(),
        session_timeout: ms(config.zookeeper_session_timeout_ms),
        connection_timeout: ms(config.zookeeper_connection_timeout_ms),
    }
}

// ------------------------------------------------------------------------------------------
// meta.properties (format owned by `log::manager::MetaProperties`)
// ------------------------------------------------------------------------------------------

fn read_meta(dir: &Path) -> Result<Option<MetaProperties>> {
    MetaProperties::read(dir)
        .map_err(|e| ZkBrokerError::Fatal(format!("meta.properties in {}: {e}", dir.display())))
}

/// Check every log dir's `meta.properties` against the ZooKeeper cluster id and the configured
/// broker id; returns the broker id stored in the dirs, if any.
pub fn check_meta_properties(
    log_dirs: &[PathBuf],
    cluster_id: &str,
    configured_broker_id: BrokerId,
) -> Result<Option<BrokerId>> {
    let mut stored: Option<(BrokerId, &Path)> = None;
    for dir in log_dirs {
        let Some(m) = read_meta(dir)? else {
            continue;
        };
        let file = dir.join(META_PROPERTIES);
        if m.version != 0 {
            return Err(ZkBrokerError::Fatal(format!(
                "Invalid version {} in {}: ZooKeeper mode requires version 0 (a KRaft log dir?)",
                m.version,
                file.display()
            )));
        }
        if let Some(c) = &m.cluster_id {
            if c != cluster_id {
                return Err(ZkBrokerError::Fatal(format!(
                    "Invalid cluster.id in: {}. Expected {cluster_id}, but read {c}",
                    file.display()
                )));
            }
        }
        if let Some(id) = m.broker_id {
            if configured_broker_id >= 0 && id != configured_broker_id {
                return Err(ZkBrokerError::Fatal(format!(
                    "Configured broker.id {configured_broker_id} doesn't match stored broker.id Some({id}) in meta.properties at {}. If you moved your data, make sure your configured broker.id matches. If you intend to create a new broker, you should remove all data in your data directories (log.dirs).",
                    file.display()
                )));
            }
            if let Some((other, other_dir)) = stored {
                if other != id {
                    return Err(ZkBrokerError::Fatal(format!(
                        "Stored node id {id} in {} doesn't match previous node id {other} in {}",
                        dir.display(),
                        other_dir.display()
                    )));
                }
            }
            stored = Some((id, dir));
        }
    }
    Ok(stored.map(|(id, _)| id))
}

// ------------------------------------------------------------------------------------------
// Start-up: prepare
// ------------------------------------------------------------------------------------------

/// Result of [`prepare`].
#[derive(Clone, Debug)]
pub struct ZkPrepared {
    pub session: ZkSession,
    pub cluster_id: String,
    pub broker_id: BrokerId,
}

impl ZkPrepared {
    /// Run a start-up step that reads ZooKeeper. Before registration nothing watches the
    /// session, and a long log recovery on a starved machine can outlast it: as Kafka's
    /// `ZooKeeperClient` re-initialises after an expiry (the broker has no ephemeral node yet),
    /// start-up goes on with a new session, running the step again if the expiry hit it.
    pub async fn step<T, F, Fut>(&mut self, what: &str, step: F) -> anyhow::Result<T>
    where
        F: Fn(ZkSession) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        for _ in 0..3 {
            if self.session.is_terminated() {
                warn!(
                    step = what,
                    session = format!("{:#x}", self.session.session_id()),
                    "ZooKeeper session ended during start-up; going on with a new session"
                );
                self.session = self.session.reconnect().await?;
            }
            match step(self.session.clone()).await {
                Err(e) if is_session_end(&e) && self.session.is_terminated() => continue,
                other => return other,
            }
        }
        Err(anyhow::anyhow!(
            "ZooKeeper session kept expiring during start-up ({what})"
        ))
    }
}

/// Whether an error comes from a ZooKeeper session that ended.
pub fn is_session_end(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<zookeeper_client::Error>(),
            Some(zookeeper_client::Error::SessionExpired | zookeeper_client::Error::ClientClosed)
        ) || matches!(
            c.downcast_ref::<samsa_common::error::Error>(),
            Some(samsa_common::error::Error::SessionExpired)
        )
    })
}

/// Start-up steps 1–5 of `KafkaServer.startup` (see module docs).
pub async fn prepare(config: &BrokerConfig) -> Result<ZkPrepared> {
    let zc = zk_config(config);
    info!(connect = %zc.connect, "connecting to ZooKeeper");
    let session = ZkSession::connect(&zc).await?;
    session.create_top_level_paths().await?;
    let cluster_id = match session.get_cluster_id().await? {
        Some(id) => id,
        None => {
            session
                .create_or_get_cluster_id(&kafka_uuid::random_cluster_id())
                .await?
        }
    };
    info!(%cluster_id, "cluster id");
    let stored = check_meta_properties(&config.log_dirs, &cluster_id, config.broker_id)?;
    let broker_id = if config.broker_id >= 0 {
        config.broker_id
    } else if let Some(id) = stored {
        id
    } else if config.broker_id_generation_enable {
        let seq = session.generate_broker_sequence_id().await?;
        let id = seq + config.reserved_broker_max_id;
        info!(broker_id = id, "generated broker id from /brokers/seqid");
        id
    } else {
        return Err(ZkBrokerError::Fatal(
            "broker.id is not set, no meta.properties holds one and broker.id.generation.enable=false"
                .into(),
        ));
    };
    for dir in &config.log_dirs {
        // Keep keys we do not manage (e.g. a directory.id) when the file exists.
        let mut meta =
            read_meta(dir)?.unwrap_or_else(|| MetaProperties::new(broker_id, &cluster_id));
        meta.broker_id = Some(broker_id);
        meta.cluster_id = Some(cluster_id.clone());
        std::fs::create_dir_all(dir).map_err(|source| ZkBrokerError::Io {
            dir: dir.display().to_string(),
            source,
        })?;
        meta.write(dir).map_err(|e| {
            ZkBrokerError::Fatal(format!(
                "cannot write meta.properties in {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(ZkPrepared {
        session,
        cluster_id,
        broker_id,
    })
}

// ------------------------------------------------------------------------------------------
// Registration and session life
// ------------------------------------------------------------------------------------------

/// The broker's registration as currently in ZooKeeper.
#[derive(Clone, Debug)]
pub struct Registered {
    pub session: ZkSession,
    /// czxid of `/brokers/ids/<id>`.
    pub broker_epoch: BrokerEpoch,
}

type RenewalListener = Box<dyn Fn(ZkSession) + Send + Sync>;

struct Inner {
    broker_id: BrokerId,
    /// Registration JSON version chosen from the IBP.
    version: i32,
    endpoints: Vec<EndPoint>,
    rack: Option<String>,
    current: watch::Sender<Option<Registered>>,
    /// Called with the new session after each re-registration (e.g. the controller's
    /// `session_renewed`).
    listeners: Mutex<Vec<RenewalListener>>,
    ctx: Option<Arc<BrokerContext>>,
}

impl Inner {
    fn info(&self) -> BrokerInfo {
        let mut info = BrokerInfo::new(
            self.broker_id,
            self.endpoints.clone(),
            self.rack.clone(),
            -1,
        );
        info.version = self.version;
        info
    }

    fn publish(&self, reg: Option<Registered>) {
        if let (Some(ctx), Some(r)) = (&self.ctx, &reg) {
            ctx.set_zk(r.session.clone());
            ctx.set_broker_epoch(r.broker_epoch);
        }
        self.current.send_replace(reg);
    }
}

/// The broker's registration in ZooKeeper plus the task that renews it after session expiry.
pub struct ZkBroker {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ZkBroker {
    /// Register `/brokers/ids/<id>` (JSON v5) and start watching the session. `ctx` (if given)
    /// gets the session and broker epoch now and after every re-registration.
    pub async fn register(
        session: ZkSession,
        broker_id: BrokerId,
        endpoints: Vec<EndPoint>,
        rack: Option<String>,
        ctx: Option<Arc<BrokerContext>>,
    ) -> Result<ZkBroker> {
        Self::register_with_version(session, broker_id, endpoints, rack, 5, ctx).await
    }

    /// [`ZkBroker::register`] with an explicit registration version
    /// ([`registration_version`] of the IBP).
    pub async fn register_with_version(
        session: ZkSession,
        broker_id: BrokerId,
        endpoints: Vec<EndPoint>,
        rack: Option<String>,
        version: i32,
        ctx: Option<Arc<BrokerContext>>,
    ) -> Result<ZkBroker> {
        let (current, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            broker_id,
            version,
            endpoints,
            rack,
            current,
            listeners: Mutex::new(Vec::new()),
            ctx,
        });
        check_endpoint_conflicts(&session, &inner).await?;
        let epoch = register_once(&session, &inner, None).await?;
        info!(broker_id, broker_epoch = epoch, "registered in ZooKeeper");
        inner.publish(Some(Registered {
            session: session.clone(),
            broker_epoch: epoch,
        }));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(session_loop(inner.clone(), session, stop_rx));
        Ok(ZkBroker { inner, stop, task })
    }

    pub fn broker_id(&self) -> BrokerId {
        self.inner.broker_id
    }

    /// Current registration (`None` while the session is being renewed).
    pub fn current(&self) -> Option<Registered> {
        self.inner.current.borrow().clone()
    }

    /// The current session (the last registered one).
    pub fn session(&self) -> Option<ZkSession> {
        self.current().map(|r| r.session)
    }

    pub fn broker_epoch(&self) -> Option<BrokerEpoch> {
        self.current().map(|r| r.broker_epoch)
    }

    /// Registration changes: `None` when the session expired, `Some` after re-registration.
    pub fn subscribe(&self) -> watch::Receiver<Option<Registered>> {
        self.inner.current.subscribe()
    }

    /// Call `f` with the new session after every re-registration that follows a session
    /// expiry (the broker passes the controller's `session_renewed` here).
    pub fn on_session_renewed(&self, f: impl Fn(ZkSession) + Send + Sync + 'static) {
        if let Ok(mut g) = self.inner.listeners.lock() {
            g.push(Box::new(f));
        }
    }

    /// Clean shutdown (stop the controller component first): stop renewing, delete our
    /// registration if this session owns it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let current = self.current();
        let _ = self.task.await;
        if let Some(reg) = current {
            let path = BrokerIdZNode::path(self.inner.broker_id);
            match reg.session.exists(&path).await {
                Ok(Some(stat)) if stat.ephemeral_owner == reg.session.session_id() => {
                    if let Err(e) = reg.session.delete(&path, None).await {
                        warn!(error = %e, "could not delete {path} on shutdown");
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "could not read {path} on shutdown"),
            }
        }
        info!(
            broker_id = self.inner.broker_id,
            "deregistered from ZooKeeper"
        );
    }
}

/// `/brokers/ids/<id>` JSON version for an `inter.broker.protocol.version` (Kafka's
/// `BrokerInfo.apply`): 5 from 2.7-IV0, 4 from 0.10.0-IV1, else 2.
pub fn registration_version(ibp: &str) -> i32 {
    let mut it = ibp.split(['.', '-']).map(|s| s.parse::<u32>().ok());
    let (major, minor) = match (it.next().flatten(), it.next().flatten()) {
        (Some(a), Some(b)) => (a, b),
        _ => return 5,
    };
    // 0.10.0-IV0 is the only 0.10.0 variant that still writes v2.
    let iv0_of_0_10_0 =
        (major, minor) == (0, 10) && ibp.starts_with("0.10.0") && ibp.contains("IV0");
    if (major, minor) >= (2, 7) {
        5
    } else if (major, minor) >= (0, 10) && !iv0_of_0_10_0 {
        4
    } else {
        2
    }
}

/// Refuse to start when another registered broker advertises one of our `host:port`s.
async fn check_endpoint_conflicts(session: &ZkSession, inner: &Inner) -> Result<()> {
    for (other, _) in session.get_all_brokers().await? {
        if other.id == inner.broker_id {
            continue;
        }
        for mine in &inner.endpoints {
            if mine.port != 0
                && other
                    .endpoints
                    .iter()
                    .any(|e| e.host == mine.host && e.port == mine.port)
            {
                return Err(ZkBrokerError::Fatal(format!(
                    "Configured end points {}:{} in advertised listeners are already registered by broker {}",
                    mine.host, mine.port, other.id
                )));
            }
        }
    }
    Ok(())
}

async fn register_once(
    session: &ZkSession,
    inner: &Inner,
    previous_session: Option<i64>,
) -> Result<BrokerEpoch> {
    let info = inner.info();
    let path = info.path();
    match session
        .create_checked_ephemeral(&path, &info.encode(), previous_session)
        .await
    {
        Ok(c) => Ok(c.czxid),
        Err(e) if e.is_node_exists() => {
            let owner = session
                .exists(&path)
                .await
                .ok()
                .flatten()
                .map(|s| format!("{:#x}", s.ephemeral_owner))
                .unwrap_or_else(|| "?".into());
            Err(ZkBrokerError::Fatal(format!(
                "Error while creating ephemeral at {path}, node already exists and owner '{owner}' does not match current session '{:#x}' (is another broker with broker.id {} running?)",
                session.session_id(),
                inner.broker_id
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Wait for expiry; renew the session and the registration; repeat until stopped.
async fn session_loop(inner: Arc<Inner>, mut session: ZkSession, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            state = session.expired() => {
                warn!(?state, session = format!("{:#x}", session.session_id()), "ZooKeeper session ended; re-registering with a new session");
            }
            _ = stop.changed() => return,
        }
        inner.publish(None);
        let old_id = session.session_id();
        let mut backoff = Duration::from_millis(200);
        let renewed = loop {
            if *stop.borrow() {
                return;
            }
            let attempt = async {
                let s = session.reconnect().await?;
                let epoch = register_once(&s, &inner, Some(old_id)).await?;
                Ok::<_, ZkBrokerError>((s, epoch))
            };
            let res = tokio::select! {
                r = attempt => r,
                _ = stop.changed() => return,
            };
            match res {
                Ok(v) => break v,
                Err(e) => {
                    error!(error = %e, "re-registration after session expiry failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        let (new_session, epoch) = renewed;
        info!(
            broker_id = inner.broker_id,
            broker_epoch = epoch,
            "re-registered in ZooKeeper"
        );
        session = new_session.clone();
        inner.publish(Some(Registered {
            session: new_session.clone(),
            broker_epoch: epoch,
        }));
        if let Ok(listeners) = inner.listeners.lock() {
            for l in listeners.iter() {
                l(new_session.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsa_common::config::SecurityProtocol;
    use samsa_common::zk::testing::TestZk;

    fn ep(port: i32) -> EndPoint {
        EndPoint {
            listener_name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: SecurityProtocol::Plaintext,
        }
    }

    /// Regression (fault drill, seed 23): a broker restarted on a starved machine spent longer
    /// loading its logs than its session timeout and exited with "session expired" at the next
    /// start-up read. Start-up steps now go on with a new session.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_up_steps_go_on_with_a_new_session_after_expiry() {
        let zkd = TestZk::start();
        let zc = ZkConfig::new(zkd.connect_string(), Duration::from_secs(4));
        let session = ZkSession::connect(&zc).await.expect("connect");
        session
            .create(
                "/marker",
                b"m",
                samsa_common::zk::session::CreateMode::Persistent,
            )
            .await
            .expect("create");
        let mut p = ZkPrepared {
            session,
            cluster_id: "c".into(),
            broker_id: 1,
        };
        // Expired while the logs loaded: the next step runs on a new session.
        let first = p.session.session_id();
        zkd.expire_session(&p.session).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !p.session.is_terminated() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "session not expired"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = p
            .step("read", |zk| async move {
                Ok(zk.get("/marker").await?.map(|(d, _)| d))
            })
            .await
            .expect("step on a new session");
        assert_eq!(got, Some(b"m".to_vec()));
        let second = p.session.session_id();
        assert_ne!(first, second, "a new session");
        // Expired in the middle of a step: the step runs again on another new session.
        let calls = std::sync::atomic::AtomicU32::new(0);
        let got = p
            .step("read", |zk| {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let zkd = &zkd;
                async move {
                    if n == 0 {
                        zkd.expire_session(&zk).await;
                        while !zk.is_terminated() {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    Ok(zk.get("/marker").await?.map(|(d, _)| d))
                }
            })
            .await
            .expect("step re-run");
        assert_eq!(got, Some(b"m".to_vec()));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_ne!(p.session.session_id(), second);
        // Other errors are not retried.
        let calls = std::sync::atomic::AtomicU32::new(0);
        let r: anyhow::Result<()> = p
            .step("failing", |_| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Err(anyhow::anyhow!("bad znode")) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn registration_versions() {
        assert_eq!(registration_version("3.9"), 5);
        assert_eq!(registration_version("3.9-IV0"), 5);
        assert_eq!(registration_version("2.7-IV0"), 5);
        assert_eq!(registration_version("2.6"), 4);
        assert_eq!(registration_version("0.10.0-IV1"), 4);
        assert_eq!(registration_version("0.10.0-IV0"), 2);
        assert_eq!(registration_version("0.9.0"), 2);
    }

    #[test]
    fn meta_properties_checks() {
        let d1 = tempfile::tempdir().expect("tmp");
        let d2 = tempfile::tempdir().expect("tmp");
        let dirs = vec![d1.path().to_path_buf(), d2.path().to_path_buf()];
        assert_eq!(check_meta_properties(&dirs, "C", 1).expect("empty"), None);
        let m = MetaProperties::new(1, "C");
        m.write(d1.path()).expect("write");
        let text = std::fs::read_to_string(d1.path().join(META_PROPERTIES)).expect("read");
        assert!(
            text.contains("version=0")
                && text.contains("broker.id=1")
                && text.contains("cluster.id=C")
        );
        assert_eq!(MetaProperties::read(d1.path()).expect("r"), Some(m.clone()));
        assert_eq!(check_meta_properties(&dirs, "C", -1).expect("ok"), Some(1));
        assert!(check_meta_properties(&dirs, "OTHER", 1).is_err());
        assert!(check_meta_properties(&dirs, "C", 2).is_err());
        MetaProperties {
            broker_id: Some(2),
            ..m.clone()
        }
        .write(d2.path())
        .expect("write");
        assert!(check_meta_properties(&dirs, "C", -1).is_err());
        MetaProperties { version: 1, ..m }
            .write(d2.path())
            .expect("write");
        assert!(check_meta_properties(&dirs, "C", 1).is_err());
    }

    async fn base_config(zkd: &TestZk, chroot: &str, broker_id: i32, dir: &Path) -> BrokerConfig {
        let mut p = std::collections::HashMap::new();
        p.insert(
            "zookeeper.connect".into(),
            zkd.connect_string_with_chroot(chroot),
        );
        p.insert("broker.id".into(), broker_id.to_string());
        p.insert("log.dirs".into(), dir.display().to_string());
        p.insert("zookeeper.session.timeout.ms".into(), "6000".into());
        BrokerConfig::from_props(&p).expect("config")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn startup_registration_and_expiry() {
        let zkd = TestZk::start();
        let dir = tempfile::tempdir().expect("tmp");

        // Generated id: first broker gets 1001, seqid dataVersion 1.
        let cfg = base_config(&zkd, "/kafka", -1, dir.path()).await;
        let prepared = prepare(&cfg).await.expect("prepare");
        assert_eq!(prepared.broker_id, 1001);
        let meta = MetaProperties::read(dir.path()).expect("r").expect("some");
        assert_eq!(
            meta.cluster_id.as_deref(),
            Some(prepared.cluster_id.as_str())
        );
        assert_eq!(meta.broker_id, Some(1001));
        // Restart with broker.id unset reuses meta.properties.
        let again = prepare(&cfg).await.expect("prepare again");
        assert_eq!(again.broker_id, 1001);
        assert_eq!(again.cluster_id, prepared.cluster_id);

        let root = ZkSession::connect(&ZkConfig::new(zkd.connect_string(), Duration::from_secs(6)))
            .await
            .expect("root");
        let (_, st) = root
            .get("/kafka/brokers/seqid")
            .await
            .expect("g")
            .expect("s");
        assert_eq!(st.version, 1);
        let (cid, _) = root.get("/kafka/cluster/id").await.expect("g").expect("s");
        let v: serde_json::Value = serde_json::from_slice(&cid).expect("json");
        assert_eq!(v["version"], "1");
        assert_eq!(v["id"].as_str().map(str::len), Some(22));

        // A mismatching cluster id refuses to start.
        let bad_dir = tempfile::tempdir().expect("tmp");
        MetaProperties::new(5, "someOtherClusterIdxxxxx")
            .write(bad_dir.path())
            .expect("w");
        let bad = base_config(&zkd, "/kafka", 5, bad_dir.path()).await;
        assert!(matches!(prepare(&bad).await, Err(ZkBrokerError::Fatal(_))));

        // Registration: v5 JSON, dataVersion 1, ephemeral owned by our session.
        let zb = ZkBroker::register(prepared.session.clone(), 1001, vec![ep(9092)], None, None)
            .await
            .expect("register");
        let (data, st) = root
            .get("/kafka/brokers/ids/1001")
            .await
            .expect("g")
            .expect("s");
        assert_eq!(st.version, 1);
        assert_eq!(st.ephemeral_owner, prepared.session.session_id());
        let v: serde_json::Value = serde_json::from_slice(&data).expect("json");
        assert_eq!(v["version"], 5);
        assert_eq!(
            v["endpoints"],
            serde_json::json!(["PLAINTEXT://127.0.0.1:9092"])
        );
        assert_eq!(v["features"], serde_json::json!({}));
        assert!(v.get("rack").is_none());
        let epoch1 = zb.broker_epoch().expect("epoch");
        assert_eq!(epoch1, st.czxid);

        // Duplicate id from another session: fatal, original untouched.
        let other = ZkSession::connect(&zk_config(&cfg)).await.expect("other");
        let dup = ZkBroker::register(other, 1001, vec![ep(9093)], None, None).await;
        assert!(matches!(dup, Err(ZkBrokerError::Fatal(_))));
        let (_, st2) = root
            .get("/kafka/brokers/ids/1001")
            .await
            .expect("g")
            .expect("s");
        assert_eq!(st2.czxid, st.czxid);
        // Same endpoint as a live broker under another id: refused.
        let other = ZkSession::connect(&zk_config(&cfg)).await.expect("other");
        let clash = ZkBroker::register(other, 7, vec![ep(9092)], None, None).await;
        assert!(matches!(clash, Err(ZkBrokerError::Fatal(_))));

        // Forced expiry: re-registered with a larger czxid on a new session.
        let mut sub = zb.subscribe();
        zkd.expire_session(&prepared.session).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let epoch2 = loop {
            if let Some(r) = sub.borrow_and_update().clone() {
                if r.broker_epoch != epoch1 {
                    break r.broker_epoch;
                }
            }
            tokio::time::timeout_at(deadline, sub.changed())
                .await
                .expect("re-registration in time")
                .expect("sender alive");
        };
        assert!(epoch2 > epoch1);
        let (_, st3) = root
            .get("/kafka/brokers/ids/1001")
            .await
            .expect("g")
            .expect("s");
        assert_eq!(st3.czxid, epoch2);

        // Clean shutdown removes the registration immediately.
        zb.shutdown().await;
        assert!(root
            .exists("/kafka/brokers/ids/1001")
            .await
            .expect("e")
            .is_none());
    }
}
