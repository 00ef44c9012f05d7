//! The broker process: the shared [`BrokerContext`] every handler receives, and
//! the start-up / shutdown sequence (Kafka's `KafkaServer.startup`/`shutdown`,
//! ZooKeeper mode).
//!
//! Start-up: config → bind listeners (so a port clash fails fast; port 0 is
//! resolved before registration) → LogManager → ZooKeeper registration and
//! controller election → ReplicaManager → serve requests.
//! Shutdown (SIGTERM/SIGINT): controlled shutdown while still serving → stop
//! accepting and drain connections → replica manager → LogManager (flush,
//! checkpoints, clean-shutdown marker) → close the ZooKeeper session
//! (deregisters) → exit 0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use samsa_common::config::{BrokerConfig, Endpoint};
use samsa_common::types::{BrokerEpoch, BrokerId};
use samsa_common::zk::session::ZkSession;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::connection::ConnLimits;
use crate::dispatch::Dispatcher;
use crate::log::config::LogConfig;
use crate::log::manager::{LogManager, LogManagerConfig};
use crate::metadata_cache::MetadataCache;
use crate::producer_id::ProducerIdManager;
use crate::server::{self, ServerLimits};

/// Everything handlers share, passed as `Arc<BrokerContext>`. Engineers add the
/// component they own as a field here (small additive edit) and wire it in
/// [`Broker::start`].
#[derive(Debug)]
pub struct BrokerContext {
    /// `broker.id`.
    pub broker_id: BrokerId,
    /// The validated configuration.
    pub config: Arc<BrokerConfig>,
    /// Advertised endpoints with port 0 replaced by the bound port (what we
    /// register in `/brokers/ids/<id>`).
    pub advertised: Vec<Endpoint>,
    /// Cluster id read from / written to `/cluster/id` at start-up.
    pub cluster_id: RwLock<Option<String>>,
    /// Current broker epoch (czxid of our `/brokers/ids/<id>` znode); -1 until registered.
    pub broker_epoch: AtomicI64,
    /// The view of the cluster installed by UpdateMetadata.
    pub metadata_cache: MetadataCache,
    /// Hosted partitions, leader/follower state, purgatories (set once at start-up,
    /// after the log manager is open).
    pub replica_manager:
        std::sync::OnceLock<std::sync::Arc<crate::replica::manager::ReplicaManager>>,
    /// The broker's ZooKeeper session; `None` until connected, replaced after expiry.
    pub zk: RwLock<Option<ZkSession>>,
    /// Producer id blocks for InitProducerId.
    pub producer_ids: ProducerIdManager,
    /// All partition logs on this broker; set once at start-up (absent in
    /// network-only test brokers).
    pub log_manager: OnceLock<Arc<LogManager>>,
    /// This broker's controller component (election + controller duties); `None` until
    /// started (and in network-only tests).
    pub controller: ControllerSlot,
    /// Classic consumer-group coordinator.
    pub groups: Arc<crate::coordinator::group::GroupCoordinator>,
    /// SCRAM credentials and the inter-broker client's TLS/SASL.
    pub security: crate::security::SecurityContext,
    /// Transaction coordinator (`__transaction_state` partitions this broker leads).
    pub txns: Arc<crate::coordinator::txn::TxnCoordinator>,
    /// KIP-890 transaction verification of transactional Produce batches (connections to
    /// the transaction coordinators).
    pub txn_verifier: Arc<crate::replica::txn_verification::TxnVerifier>,
    /// Client quotas (produce/fetch byte rates), kept fresh by the `/config/changes`
    /// listener; charged by the dispatcher.
    pub quotas: crate::quota::client::ClientQuotas,
    /// The live config with `/config/brokers` applied (`config` is the start-up one).
    pub dynamic: crate::dynamic_config::DynamicBrokerConfig,
}

/// Holder of the [`samsa_controller::ControllerHandle`] (which is not `Debug`).
#[derive(Default)]
pub struct ControllerSlot(RwLock<Option<samsa_controller::ControllerHandle>>);

impl std::fmt::Debug for ControllerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControllerSlot")
    }
}

impl ControllerSlot {
    pub fn get(&self) -> Option<samsa_controller::ControllerHandle> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set(&self, h: samsa_controller::ControllerHandle) {
        match self.0.write() {
            Ok(mut g) => *g = Some(h),
            Err(p) => *p.into_inner() = Some(h),
        }
    }

    /// Whether this broker is the active controller (false when no controller runs).
    pub fn is_active(&self) -> bool {
        self.get().is_some_and(|h| h.is_active())
    }
}

impl BrokerContext {
    /// A context with the network-level pieces; start-up fills in the rest.
    pub fn new(config: Arc<BrokerConfig>, advertised: Vec<Endpoint>) -> Self {
        let groups = crate::coordinator::group::GroupCoordinator::new(
            crate::coordinator::group::GroupConfig {
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                max_size: config.group_max_size,
                offset_metadata_max_bytes: config.offset_metadata_max_bytes,
                offsets_retention_ms: i64::from(config.offsets_retention_minutes) * 60_000,
                required_acks: config.offsets_commit_required_acks,
            },
        );
        Self {
            broker_id: config.broker_id,
            advertised,
            cluster_id: RwLock::new(None),
            broker_epoch: AtomicI64::new(-1),
            metadata_cache: MetadataCache::new(),
            replica_manager: std::sync::OnceLock::new(),
            zk: RwLock::new(None),
            producer_ids: ProducerIdManager::new(),
            log_manager: OnceLock::new(),
            controller: ControllerSlot::default(),
            groups,
            security: Default::default(),
            txns: crate::coordinator::txn::TxnCoordinator::new(
                crate::coordinator::txn::config_from(&config),
            ),
            txn_verifier: crate::replica::txn_verification::TxnVerifier::new(
                config.broker_id,
                config.request_timeout_ms,
            ),
            quotas: crate::quota::client::ClientQuotas::with_controller_window(
                crate::quota::rate::WindowConfig::new(
                    config.quota_window_num,
                    config.quota_window_size_seconds,
                ),
                config.controller_quota_window_num,
                config.controller_quota_window_size_seconds,
            ),
            dynamic: crate::dynamic_config::DynamicBrokerConfig::new(config.clone()),
            config,
        }
    }

    /// May the connection's principal perform `op` on `rt`/`name`? Always true without an
    /// authorizer. Handlers call this once per resource and answer
    /// [`crate::security::authorizer::denied_error`] when it says no.
    pub fn authorize(
        &self,
        conn: &crate::connection::ConnInfo,
        op: crate::security::authorizer::Operation,
        rt: crate::security::authorizer::ResourceType,
        name: &str,
    ) -> bool {
        self.security
            .authorizer
            .authorize(&conn.principal, conn.peer.ip(), op, rt, name)
    }

    /// The log manager, once start-up has opened it.
    pub fn log_manager(&self) -> Option<&Arc<LogManager>> {
        self.log_manager.get()
    }

    /// The current ZooKeeper session (cheap clone), if connected.
    pub fn zk(&self) -> Option<ZkSession> {
        match self.zk.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Install a (new) ZooKeeper session, e.g. after connecting or re-connecting on expiry.
    pub fn set_zk(&self, session: ZkSession) {
        match self.zk.write() {
            Ok(mut g) => *g = Some(session),
            Err(p) => *p.into_inner() = Some(session),
        }
    }

    pub fn broker_epoch(&self) -> BrokerEpoch {
        self.broker_epoch.load(Ordering::Acquire)
    }

    pub fn set_broker_epoch(&self, epoch: BrokerEpoch) {
        self.broker_epoch.store(epoch, Ordering::Release);
    }

    /// The replica manager, or an error before start-up installed it.
    pub fn replicas(
        &self,
    ) -> crate::error::Result<&std::sync::Arc<crate::replica::manager::ReplicaManager>> {
        self.replica_manager
            .get()
            .ok_or_else(|| crate::error::Error::Internal("replica manager not started".into()))
    }

    pub fn cluster_id(&self) -> Option<String> {
        match self.cluster_id.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_cluster_id(&self, id: String) {
        match self.cluster_id.write() {
            Ok(mut g) => *g = Some(id),
            Err(p) => *p.into_inner() = Some(id),
        }
    }
}

/// A running broker.
pub struct Broker {
    pub ctx: Arc<BrokerContext>,
    /// Bound address per listener name.
    pub bound: Vec<(String, SocketAddr)>,
    shutdown_tx: watch::Sender<bool>,
    server: JoinHandle<()>,
    /// ZooKeeper registration (None for network-only brokers in tests).
    zk: Option<crate::zk_broker::ZkBroker>,
}

impl Broker {
    /// Runs the start-up sequence (ZooKeeper included) and starts serving.
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Broker> {
        Self::start_with(config, true).await
    }

    /// Network-only start (no ZooKeeper, no registration): for in-process tests of the
    /// request path.
    pub async fn start_network_only(config: BrokerConfig) -> anyhow::Result<Broker> {
        Self::start_with(config, false).await
    }

    async fn start_with(config: BrokerConfig, with_zk: bool) -> anyhow::Result<Broker> {
        let mut config = Arc::new(config);
        // Kafka itself stays quiet about unknown keys; we warn (the issue asks for it),
        // since a misspelt key silently falling back to a default is a common surprise.
        // `listener.name.<l>.` keys are read by the security module; the metrics key by metrics.
        for k in config.unknown.keys().filter(|k| {
            !k.starts_with("listener.name.")
                && k.as_str() != crate::metrics::LISTENER_KEY
                && !samsa_common::config::AUTHORIZER_KEYS.contains(&k.as_str())
        }) {
            warn!("{}", unknown_key_note(k));
        }
        let metrics_config = crate::metrics::MetricsConfig::from_unknown(&config.unknown)
            .map_err(|e| anyhow::anyhow!(e))?;
        // TLS stores, JAAS and SASL settings: fail start-up before binding, naming the key.
        let scram_store = Arc::new(crate::security::sasl::scram::ScramStore::default());
        let listener_security = crate::security::build_listeners(&config, &scram_store)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let inter_broker_security = crate::security::inter_broker_client(&config)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .map(Arc::new);
        info!(broker_id = config.broker_id, "starting");

        // Bind first: a taken port fails start-up before we touch disks or ZooKeeper.
        let mut listeners = server::bind(&config.listeners).await?;
        for l in &mut listeners {
            l.security = listener_security.get(&*l.name).cloned();
        }
        let metrics_listener = match &metrics_config.listen {
            Some(addr) => Some(crate::metrics::http::bind(addr).await?),
            None => None,
        };
        if metrics_listener.is_some() {
            crate::metrics::set_enabled(true);
        }
        let mut bound = Vec::new();
        for l in &listeners {
            bound.push((l.name.to_string(), l.local_addr()?));
        }
        let advertised = config
            .advertised_listeners
            .iter()
            .map(|ep| {
                let mut ep = ep.clone();
                if let Some((_, addr)) = bound.iter().find(|(n, _)| *n == ep.name) {
                    if ep.port == 0 {
                        ep.port = addr.port();
                    }
                    if ep.host.is_empty() {
                        ep.host = default_host();
                    }
                }
                ep
            })
            .collect();

        // ZooKeeper: chroot, top-level paths, cluster id, meta.properties, broker id.
        let prepared = if with_zk {
            let p = crate::zk_broker::prepare(&config).await?;
            if p.broker_id != config.broker_id {
                let mut c = (*config).clone();
                c.broker_id = p.broker_id;
                config = Arc::new(c);
            }
            Some(p)
        } else {
            None
        };

        let mut ctx = BrokerContext::new(config.clone(), advertised);
        ctx.security.tokens = Arc::new(crate::security::tokens::TokenManager::new(
            crate::security::tokens::TokenSettings::from_config(&config),
            scram_store.tokens.clone(),
        ));
        ctx.security.scram = scram_store;
        ctx.security.authorizer =
            crate::security::authorizer::Authorizer::from_config(config.authorizer.as_ref());
        if let Some(s) = inter_broker_security {
            ctx.txn_verifier.set_client_security(s.clone());
            let _ = ctx.security.inter_broker.set(s);
        }
        let ctx = Arc::new(ctx);
        let mut prepared = prepared;
        if let Some(p) = &mut prepared {
            ctx.set_cluster_id(p.cluster_id.clone());
            ctx.set_zk(p.session.clone());
            // Security and quota state before the listeners serve; `/config/changes` and the
            // ACL and token change listeners keep them fresh.
            p.step("security and quota state", |zk| {
                let ctx = ctx.clone();
                async move {
                    let n = crate::security::load_scram_users(&zk, &ctx.security.scram).await?;
                    if n > 0 {
                        info!(users = n, "loaded SCRAM credentials");
                    }
                    // Delegation tokens, when a secret key is set.
                    if ctx.security.tokens.settings.enabled() {
                        let n = ctx.security.tokens.load(&zk).await?;
                        info!(tokens = n, "loaded delegation tokens");
                    }
                    if ctx.security.authorizer.is_enabled() {
                        let n = ctx.security.authorizer.load(&zk).await?;
                        info!(resources = n, "loaded ACLs");
                    }
                    // Client quotas, before the first request is charged.
                    crate::config_change::load_client_quotas(&zk, &ctx.quotas).await?;
                    ctx.quotas.ip_connection_rates.load(&zk).await?;
                    Ok(())
                }
            })
            .await?;
            ctx.set_zk(p.session.clone());
        }

        // Logs: lock the dirs, load every partition (recovering after an unclean stop).
        if let Some(p) = &mut prepared {
            // Dynamic broker configs first (Kafka's `DynamicBrokerConfig.initialize`): the
            // log defaults below come from the effective config.
            let lm_config = p
                .step("dynamic broker configs and topic configs", |zk| {
                    let ctx = ctx.clone();
                    async move {
                        let effective = ctx.dynamic.load(&zk, ctx.broker_id).await?;
                        log_manager_config(&effective, Some((&zk, &ctx.dynamic))).await
                    }
                })
                .await?;
            ctx.set_zk(p.session.clone());
            let lm = tokio::task::spawn_blocking(move || LogManager::open(lm_config))
                .await
                .map_err(|e| anyhow::anyhow!("log manager start-up panicked: {e}"))??;
            lm.start_background_tasks();
            let _ = ctx.log_manager.set(lm.clone());
            // Hosted partitions, fetchers, purgatories (serves LeaderAndIsr, Produce, Fetch).
            crate::replica::start(&ctx, lm.clone());
            // Failed log dirs: partitions offline, controller notified (or halt if none left).
            crate::replica::log_dir_failure::spawn(ctx.clone(), lm);
            // Group coordinator follows leadership of `__consumer_offsets` partitions.
            crate::coordinator::group::install(&ctx);
            // Transaction coordinator follows leadership of `__transaction_state` partitions.
            crate::coordinator::txn::install(&ctx);
        }

        // Register /brokers/ids/<id> (broker epoch = czxid); re-registers after session expiry.
        let zk = match prepared {
            Some(mut p) => {
                // Loading the logs can outlast the session (see `ZkPrepared::step`).
                p.step("registration", |_| async { Ok(()) }).await?;
                ctx.set_zk(p.session.clone());
                let endpoints = ctx
                    .advertised
                    .iter()
                    .map(samsa_common::zk::znodes::EndPoint::from)
                    .collect();
                Some(
                    crate::zk_broker::ZkBroker::register_with_version(
                        p.session,
                        p.broker_id,
                        endpoints,
                        config.broker_rack.clone(),
                        crate::zk_broker::registration_version(
                            &config.inter_broker_protocol_version,
                        ),
                        Some(ctx.clone()),
                    )
                    .await?,
                )
            }
            None => None,
        };

        // Controller component: takes part in the /controller election on the shared session.
        if let Some(zkb) = &zk {
            if let Some(session) = zkb.session() {
                let mut cc = controller_config(&config);
                cc.unclean_leader_election_enable = ctx.dynamic.unclean_flag.clone();
                cc.security = ctx.security.client();
                let handle = samsa_controller::spawn(session, cc);
                let renew = handle.clone();
                zkb.on_session_renewed(move |s| renew.session_renewed(s));
                ctx.controller.set(handle);
            }
        }

        let connection_limits = crate::quota::connections::ConnectionLimits {
            ip_rates: ctx.quotas.ip_connection_rates.clone(),
            ..crate::quota::connections::ConnectionLimits::from_config(&ctx.dynamic.current())
        };
        let connection_quotas =
            crate::quota::connections::ConnectionQuotas::new(connection_limits.clone());
        let _ = ctx.dynamic.connection_quotas.set(connection_quotas.clone());
        let limits = ServerLimits {
            conn: ConnLimits {
                max_request_bytes: usize::try_from(config.socket_request_max_bytes.max(0))
                    .unwrap_or(usize::MAX),
                idle_timeout: u64::try_from(config.connections_max_idle_ms)
                    .ok()
                    .map(Duration::from_millis),
                ..ConnLimits::default()
            },
            connections: connection_limits.clone(),
            quotas: Some(connection_quotas),
            drain_timeout: Duration::from_millis(
                u64::try_from(config.request_timeout_ms.max(0)).unwrap_or(30_000),
            ),
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // `/config/changes` listener: topic config overrides → logs (+ controller).
        if zk.is_some() {
            crate::config_change::spawn(
                ctx.clone(),
                crate::config_change::BrokerTopicConfigHandler::new(&ctx),
                shutdown_rx.clone(),
            );
        }
        // Delegation tokens: change notifications; the active controller's expiry scan.
        if zk.is_some() && ctx.security.tokens.settings.enabled() {
            crate::security::tokens::spawn_listener(ctx.clone(), shutdown_rx.clone());
            crate::security::tokens::spawn_expiry(ctx.clone(), shutdown_rx.clone());
        }
        if zk.is_some() && ctx.security.authorizer.is_enabled() {
            crate::security::authorizer::listener::spawn(ctx.clone(), shutdown_rx.clone());
        }
        if let Some(l) = metrics_listener {
            tokio::spawn(crate::metrics::http::serve(
                l,
                Some(ctx.clone()),
                shutdown_rx.clone(),
            ));
        }
        let handler = Arc::new(Dispatcher(ctx.clone()));
        let server = tokio::spawn(server::run(listeners, handler, limits, shutdown_rx));
        info!(broker_id = ctx.broker_id, listeners = ?bound, "started");
        Ok(Broker {
            ctx,
            bound,
            shutdown_tx,
            server,
            zk,
        })
    }

    /// Address bound for `listener`.
    pub fn addr(&self, listener: &str) -> Option<SocketAddr> {
        self.bound
            .iter()
            .find(|(n, _)| n == listener)
            .map(|(_, a)| *a)
    }

    /// Orderly shutdown, in Kafka's order.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        info!(broker_id = self.ctx.broker_id, "shutting down");
        // 1. Controlled shutdown, while requests are still served (the controller
        //    moves leadership away with LeaderAndIsr sent to us).
        if self.zk.is_some() && self.ctx.config.controlled_shutdown_enable {
            controlled_shutdown(&self.ctx).await;
        }
        // 2. Stop accepting, finish in-flight requests, close connections. Parked acks=all
        //    produces are answered NOT_LEADER_OR_FOLLOWER first: the controller's LeaderAndIsr
        //    moving our leaderships can be lost as the listener closes, and they would
        //    otherwise hold the drain (and the client) for their request timeout.
        if let Some(rm) = self.ctx.replica_manager.get() {
            rm.release_parked_produces();
        }
        let _ = self.shutdown_tx.send(true);
        if let Err(e) = self.server.await {
            warn!(error = %e, "server task ended abnormally");
        }
        // 3. Replica manager: stop follower fetchers, write high watermarks.
        if let Some(rm) = self.ctx.replica_manager.get() {
            rm.fetchers.shutdown();
            if let Err(e) = rm.checkpoint_high_watermarks() {
                warn!(error = %e, "high watermark checkpoint failed");
            }
        }
        // 4. LogManager: flush, checkpoints, clean-shutdown marker.
        if let Some(lm) = self.ctx.log_manager().cloned() {
            match tokio::task::spawn_blocking(move || lm.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "log manager shutdown failed"),
                Err(e) => warn!(error = %e, "log manager shutdown panicked"),
            }
        }
        // 5. Controller component.
        if let Some(c) = self.ctx.controller.get() {
            c.shutdown().await;
        }
        // 6. Deregister and close the ZooKeeper session.
        if let Some(zk) = self.zk {
            zk.shutdown().await;
        }
        info!(broker_id = self.ctx.broker_id, "shut down completed");
        Ok(())
    }
}

/// Kafka's `KafkaServer.controlledShutdown` (ZK mode): ask the controller, over the
/// control-plane (or inter-broker) listener, to move our leaderships away; retry up
/// to `controlled.shutdown.max.retries` times `controlled.shutdown.retry.backoff.ms`
/// apart. Returns whether the controller confirmed with no partitions remaining.
pub async fn controlled_shutdown(ctx: &BrokerContext) -> bool {
    use kafka_protocol::messages::{BrokerId as KBrokerId, ControlledShutdownRequest};
    let config = &ctx.config;
    let listener = config
        .control_plane_listener_name
        .clone()
        .unwrap_or_else(|| config.inter_broker_listener_name.clone());
    let version = controlled_shutdown_version(&config.inter_broker_protocol_version);
    let attempts = config.controlled_shutdown_max_retries.max(1);
    let backoff = Duration::from_millis(
        u64::try_from(config.controlled_shutdown_retry_backoff_ms).unwrap_or(0),
    );
    let timeout =
        Duration::from_millis(u64::try_from(config.controller_socket_timeout_ms).unwrap_or(30_000));
    for attempt in 1..=attempts {
        let snap = ctx.metadata_cache.snapshot();
        let controller = match snap.controller_id {
            Some(id) => Some(id),
            None => match ctx.zk() {
                Some(zk) => zk.get_controller_id().await.ok().flatten(),
                None => None,
            },
        };
        // The cache learns brokers from the controller's first UpdateMetadata; a broker
        // stopped before that (e.g. right after start-up) reads the controller's
        // registration from ZooKeeper instead of failing every attempt.
        let mut addr = controller.and_then(|id| {
            snap.endpoint(id, &listener)
                .map(|ep| format!("{}:{}", ep.host, ep.port))
        });
        if let (Some(id), None, Some(zk)) = (controller, &addr, ctx.zk()) {
            if let Ok(Some((info, _))) = zk.get_broker(id).await {
                addr = info
                    .endpoint(&listener)
                    .map(|ep| format!("{}:{}", ep.host, ep.port));
            }
        }
        let outcome = match (controller, addr) {
            (Some(id), Some(addr)) => {
                let mut req = ControlledShutdownRequest::default();
                req.broker_id = KBrokerId(ctx.broker_id);
                req.broker_epoch = ctx.broker_epoch();
                let options = samsa_common::client::ClientOptions {
                    client_id: Some(format!("{}", ctx.broker_id)),
                    connect_timeout: timeout,
                    request_timeout: Some(timeout),
                    security: ctx.security.client(),
                };
                let res = async {
                    let client =
                        samsa_common::client::KafkaClient::connect_with(&addr, options).await?;
                    client.send(&req, version).await
                }
                .await;
                match res {
                    Ok(r) if r.error_code == 0 && r.remaining_partitions.is_empty() => {
                        info!("controlled shutdown succeeded");
                        return true;
                    }
                    Ok(r) => format!(
                        "controller {id} answered error {} with {} partitions remaining",
                        r.error_code,
                        r.remaining_partitions.len()
                    ),
                    Err(e) => format!("request to controller {id} at {addr} failed: {e}"),
                }
            }
            (Some(id), None) => format!("controller {id} has no {listener} endpoint in the cache"),
            (None, _) => "no controller known".to_string(),
        };
        warn!(attempt, "controlled shutdown attempt failed: {outcome}");
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
        }
    }
    warn!("Proceeding to do an unclean shutdown as all the controlled shutdown attempts failed");
    false
}

/// ControlledShutdown version pinned by `inter.broker.protocol.version`.
fn controlled_shutdown_version(ibp: &str) -> i16 {
    let mut it = ibp.split(['.', '-']).map(|s| s.parse::<u32>().ok());
    let v = match (it.next().flatten(), it.next().flatten()) {
        (Some(a), Some(b)) => (a, b),
        _ => (3, 9),
    };
    if v >= (2, 4) {
        3
    } else if v >= (2, 2) {
        2
    } else {
        1
    }
}

/// The log manager's settings from the broker config, with per-topic overrides
/// read from `/config/topics/<topic>` when a ZooKeeper session is given.
pub async fn log_manager_config(
    config: &BrokerConfig,
    zk: Option<(&ZkSession, &crate::dynamic_config::DynamicBrokerConfig)>,
) -> anyhow::Result<LogManagerConfig> {
    let defaults = config.topic_defaults();
    let mut c = LogManagerConfig::new(config.log_dirs.clone());
    c.default_config = LogConfig::from_props(&defaults)?;
    if let Some((zk, dynamic)) = zk {
        // Pipelined, 256 reads in flight: one round trip per topic in turn made start-up
        // with thousands of topics wait seconds on ZooKeeper before loading any log.
        use futures::stream::{self, StreamExt, TryStreamExt};
        let topics = zk.get_all_topics().await?;
        let configs: Vec<(String, _)> = stream::iter(topics)
            .map(|topic| async move {
                let o = zk.get_entity_config("topics", &topic).await?;
                Ok::<_, anyhow::Error>((topic, o))
            })
            .buffered(256)
            .try_collect()
            .await?;
        for (topic, overrides) in configs {
            let overrides: std::collections::HashMap<String, String> =
                overrides.into_iter().collect();
            if !overrides.is_empty() {
                c.topic_configs.insert(
                    topic.clone(),
                    LogConfig::with_overrides(&defaults, &overrides)?,
                );
                // Kept so a later broker default change re-applies them.
                dynamic.remember_overrides(&topic, overrides);
            }
        }
    }
    let ms = |v: i64| u64::try_from(v.max(0)).unwrap_or(u64::MAX);
    c.num_recovery_threads_per_data_dir =
        usize::try_from(config.num_recovery_threads_per_data_dir.max(1)).unwrap_or(1);
    c.retention_check_interval_ms = ms(config.log_retention_check_interval_ms);
    c.flush_check_interval_ms = ms(config.log_flush_scheduler_interval_ms);
    c.flush_recovery_offset_checkpoint_interval_ms =
        ms(i64::from(config.log_flush_offset_checkpoint_interval_ms));
    c.flush_start_offset_checkpoint_interval_ms = ms(i64::from(
        config.log_flush_start_offset_checkpoint_interval_ms,
    ));
    c.high_watermark_checkpoint_interval_ms =
        ms(config.replica_high_watermark_checkpoint_interval_ms);
    c.cleaner_enable = config.log_cleaner_enable;
    c.cleaner_backoff_ms = ms(config.log_cleaner_backoff_ms);
    c.cleaner_dedupe_buffer_size = usize::try_from(
        config.log_cleaner_dedupe_buffer_size / i64::from(config.log_cleaner_threads.max(1)),
    )
    .unwrap_or(128 * 1024 * 1024);
    c.cleaner_load_factor = config.log_cleaner_io_buffer_load_factor;
    c.producer_id_expiration_check_interval_ms =
        ms(i64::from(config.producer_id_expiration_check_interval_ms));
    c.producer_state = crate::log::manager::producer_state_config(config);
    Ok(c)
}

/// The controller's settings from the broker config.
pub fn controller_config(config: &BrokerConfig) -> samsa_controller::ControllerConfig {
    let mut c = samsa_controller::ControllerConfig::new(config.broker_id);
    c.control_listener = config
        .control_plane_listener_name
        .clone()
        .unwrap_or_else(|| config.inter_broker_listener_name.clone());
    c.inter_broker_protocol_version = config.inter_broker_protocol_version.clone();
    c.unclean_leader_election_enable = Arc::new(std::sync::atomic::AtomicBool::new(
        config.unclean_leader_election_enable,
    ));
    c.auto_leader_rebalance_enable = config.auto_leader_rebalance_enable;
    c.leader_imbalance_per_broker_percentage = config.leader_imbalance_per_broker_percentage;
    c.leader_imbalance_check_interval = Duration::from_secs(
        u64::try_from(config.leader_imbalance_check_interval_seconds).unwrap_or(300),
    );
    c.delete_topic_enable = config.delete_topic_enable;
    c.socket_timeout =
        Duration::from_millis(u64::try_from(config.controller_socket_timeout_ms).unwrap_or(30_000));
    c
}

/// Kafka advertises the canonical host name when a listener has no host.
fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Runs a broker until SIGTERM or SIGINT, then shuts it down.
pub async fn run_until_signal(config: BrokerConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let broker = Broker::start(config).await?;
    tokio::select! {
        _ = term.recv() => info!("received SIGTERM"),
        _ = int.recv() => info!("received SIGINT"),
    }
    broker.shutdown().await
}

/// Start-up note for a server.properties key we don't know. Kafka 3.9's broker keeps
/// unknown keys silently (`KafkaConfig` never calls `logUnused`), so this is only an info
/// line, never a warning. Topic-level keys (e.g. `file.delete.delay.ms`) get a hint: the
/// broker ignores them and takes the default from the `log.*` synonym instead.
pub fn unknown_key_note(key: &str) -> String {
    match samsa_common::config::topic_config_def(key) {
        Some(def) => match def.synonyms.first() {
            Some(broker_key) => format!(
                "'{key}' is a topic-level config and is ignored in server.properties; \
                 the broker default is set with '{broker_key}'"
            ),
            None => format!("'{key}' is a topic-level config and is ignored in server.properties"),
        },
        None => format!("the configuration '{key}' was supplied but is not used"),
    }
}

#[cfg(test)]
mod tests {
    use super::unknown_key_note;

    #[test]
    fn topic_level_keys_in_server_properties_point_to_the_broker_key() {
        let n = unknown_key_note("file.delete.delay.ms");
        assert!(n.contains("topic-level"), "{n}");
        assert!(n.contains("log.segment.delete.delay.ms"), "{n}");
        let n = unknown_key_note("some.plugin.setting");
        assert!(
            n.contains("'some.plugin.setting'") && n.contains("not used"),
            "{n}"
        );
    }
}
