//! The broker's `/config/changes` handler (Kafka's `DynamicConfigManager`) on the shared
//! notification listener ([`crate::zk_notifications`]).
//!
//! Whoever changes an entity config writes `/config/<type>/<name>` and then a
//! sequential `/config/changes/config_change_<seq>` node holding
//! `{"version":2,"entity_path":"topics/<t>"}`. Every broker watches the children of
//! `/config/changes`, handles each notification with a sequence above the last one it
//! handled (all of them at start-up), re-reads the entity's config and applies it. For
//! topics that means [`ConfigChangeHandler::topic_config_changed`], which the broker wires
//! to `LogManager::update_config` (effective `LogConfig` = broker `log.*` defaults +
//! overrides). Handled notifications older than 15 minutes are deleted, as Kafka does.
//! For users (`users/<user>`) the SCRAM credentials in the user's config replace the
//! cached ones ([`ConfigChangeHandler::user_config_changed`]), so a user added or removed
//! with `kafka-configs.sh` logs in (or stops) without a restart. Quota entities
//! (`users/<u>`, `users/<u>/clients/<c>`, `clients/<c>`, with `<default>` forms) go to the
//! client quota managers ([`ConfigChangeHandler::quota_config_changed`]), `ips/<ip>` to the
//! IP connection-rate quotas ([`ConfigChangeHandler::ip_config_changed`]), and `brokers/<id>`
//! / `brokers/<default>` to the dynamic broker config ([`ConfigChangeHandler::broker`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use samsa_common::zk::session::ZkSession;
use samsa_common::zk::znodes::{
    config_type, ConfigEntityChangeNotification, ConfigEntityChangeNotificationZNode,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::broker::BrokerContext;
use crate::quota::client::{ClientQuotas, QuotaEntity};
use crate::zk_notifications::{NotificationHandler, NotificationListener};

/// What the listener calls for each handled change.
pub trait ConfigChangeHandler: Send + Sync + 'static {
    /// `/config/topics/<topic>` now holds `overrides` (empty if the node is gone).
    fn topic_config_changed(&self, topic: &str, overrides: BTreeMap<String, String>);

    /// `/config/users/<user>` now holds `config` (empty if the node is gone).
    fn user_config_changed(&self, _user: &str, _config: BTreeMap<String, String>) {}

    /// The config of a quota entity (`users/..`, `clients/..`) changed to `config`.
    fn quota_config_changed(&self, _entity: &QuotaEntity, _config: &BTreeMap<String, String>) {}

    /// The broker whose dynamic config (`brokers/<id>`, `brokers/<default>`) to update;
    /// `None` = broker config changes are not applied.
    fn broker(&self) -> Option<Arc<BrokerContext>> {
        None
    }

    /// `/config/ips/<ip>` (or `<default>`) now holds `config`.
    fn ip_config_changed(&self, _ip: &str, _config: &BTreeMap<String, String>) {}
}

impl<F> ConfigChangeHandler for F
where
    F: Fn(&str, BTreeMap<String, String>) + Send + Sync + 'static,
{
    fn topic_config_changed(&self, topic: &str, overrides: BTreeMap<String, String>) {
        self(topic, overrides)
    }
}

/// The broker's own handler (Kafka's `TopicConfigHandler`): hands new topic overrides to
/// the log layer and, when a topic turns `unclean.leader.election.enable` on, asks the
/// controller (if this broker is it) to re-run elections for leaderless partitions.
pub struct BrokerTopicConfigHandler {
    ctx: std::sync::Weak<BrokerContext>,
}

impl BrokerTopicConfigHandler {
    pub fn new(ctx: &Arc<BrokerContext>) -> Self {
        Self {
            ctx: Arc::downgrade(ctx),
        }
    }
}

impl ConfigChangeHandler for BrokerTopicConfigHandler {
    fn broker(&self) -> Option<Arc<BrokerContext>> {
        self.ctx.upgrade()
    }

    fn user_config_changed(&self, user: &str, config: BTreeMap<String, String>) {
        if let Some(ctx) = self.ctx.upgrade() {
            ctx.security.scram.set_user(user, &config);
        }
    }

    fn quota_config_changed(&self, entity: &QuotaEntity, config: &BTreeMap<String, String>) {
        if let Some(ctx) = self.ctx.upgrade() {
            ctx.quotas.entity_changed(entity, config);
        }
    }

    fn ip_config_changed(&self, ip: &str, config: &BTreeMap<String, String>) {
        if let Some(ctx) = self.ctx.upgrade() {
            ctx.quotas.ip_connection_rates.config_changed(ip, config);
        }
    }

    fn topic_config_changed(&self, topic: &str, overrides: BTreeMap<String, String>) {
        let Some(ctx) = self.ctx.upgrade() else {
            return;
        };
        apply_to_logs(&ctx, topic, &overrides);
        let unclean = overrides
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if unclean {
            if let Some(c) = ctx.controller.get() {
                c.topic_config_changed();
            }
        }
    }
}

/// New effective `LogConfig` for the topic's local logs (broker defaults + overrides).
pub(crate) fn apply_to_logs(
    ctx: &BrokerContext,
    topic: &str,
    overrides: &BTreeMap<String, String>,
) {
    let Some(lm) = ctx.log_manager() else {
        return;
    };
    let overrides: std::collections::HashMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match ctx.dynamic.topic_log_config(topic, overrides) {
        Ok(cfg) => lm.update_config(topic, cfg),
        Err(e) => warn!(topic, error = %e, "ignoring invalid topic config from ZooKeeper"),
    }
}

/// Kafka creates a partition's log with the topic config it reads from
/// `/config/topics/<topic>` at that moment (`Partition.createLog` → `fetchLogConfig`):
/// topic creation writes the overrides without a `/config/changes` notification, so the
/// listener alone never sees them. Before a LeaderAndIsr creates logs, the handler calls
/// this for every topic that has no local log yet. A failed read keeps what we have.
pub async fn load_topic_configs(ctx: &BrokerContext, zk: &ZkSession, topics: &[String]) {
    for topic in topics {
        match zk.get_entity_config(config_type::TOPIC, topic).await {
            Ok(overrides) => apply_to_logs(ctx, topic, &overrides),
            Err(e) => warn!(topic, error = %e, "cannot read topic config from ZooKeeper"),
        }
    }
}

/// Loads every quota entity's config from `/config/users`, `/config/users/<u>/clients` and
/// `/config/clients` (Kafka's `DynamicConfigManager.startup` reads all entity configs, not
/// only those with a pending notification). An unreadable znode is logged and skipped.
pub async fn load_client_quotas(
    zk: &ZkSession,
    quotas: &ClientQuotas,
) -> samsa_common::error::Result<()> {
    use samsa_common::zk::znodes::{quota_config, ConfigEntityTypeZNode};
    let mut paths = Vec::new();
    for user in zk
        .children(&ConfigEntityTypeZNode::path(config_type::USER))
        .await?
        .unwrap_or_default()
    {
        let clients = format!(
            "{}/{user}/{}",
            ConfigEntityTypeZNode::path(config_type::USER),
            quota_config::CLIENTS_CHILD
        );
        for client in zk.children(&clients).await?.unwrap_or_default() {
            paths.push(format!("{user}/{}/{client}", quota_config::CLIENTS_CHILD));
        }
        paths.push(user);
    }
    let users = paths.into_iter().map(|p| (config_type::USER, p));
    let clients = zk
        .children(&ConfigEntityTypeZNode::path(config_type::CLIENT))
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|c| (config_type::CLIENT, c));
    for (ty, name) in users.chain(clients).collect::<Vec<_>>() {
        let path = format!("{ty}/{name}");
        let Some(entity) = QuotaEntity::from_entity_path(&path) else {
            warn!(path, "skipping quota entity with a bad name");
            continue;
        };
        match zk.get_entity_config(ty, &name).await {
            Ok(config) => quotas.entity_changed(&entity, &config),
            Err(e @ samsa_common::error::Error::InvalidZnode { .. }) => {
                error!(path, error = %e, "skipping unreadable quota config znode")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The `/config/changes` handler (Kafka's `ConfigChangedNotificationHandler`): decodes the
/// notification, re-reads the entity's config and hands it to the [`ConfigChangeHandler`].
pub struct ConfigNotificationHandler<H> {
    handler: H,
}

/// The `/config/changes` listener.
pub type ConfigChangeListener<H> = NotificationListener<ConfigNotificationHandler<H>>;

/// A listener over `/config/changes` feeding `handler`.
pub fn listener<H: ConfigChangeHandler>(handler: H) -> ConfigChangeListener<H> {
    NotificationListener::new(
        ConfigEntityChangeNotificationZNode::PATH,
        ConfigEntityChangeNotification::PREFIX,
        ConfigNotificationHandler { handler },
    )
}

impl<H: ConfigChangeHandler> NotificationHandler for ConfigNotificationHandler<H> {
    async fn process_notification(
        &mut self,
        zk: &ZkSession,
        path: &str,
        data: &[u8],
    ) -> samsa_common::error::Result<()> {
        match ConfigEntityChangeNotification::decode(data) {
            Ok(n) => self.apply(zk, &n).await,
            Err(e) => {
                warn!(path, error = %e, "ignoring malformed config change notification");
                Ok(())
            }
        }
    }
}

impl<H: ConfigChangeHandler> ConfigNotificationHandler<H> {
    async fn apply(
        &self,
        zk: &ZkSession,
        n: &ConfigEntityChangeNotification,
    ) -> samsa_common::error::Result<()> {
        let Some((entity_type, entity_name)) = n.split() else {
            warn!(entity_path = %n.entity_path, "ignoring config change with bad entity path");
            return Ok(());
        };
        match entity_type {
            config_type::TOPIC => {
                let overrides = match zk.get_entity_config(entity_type, entity_name).await {
                    Ok(o) => o,
                    // Another tool wrote JSON we cannot read: as Kafka, log it and move on to
                    // later notifications instead of retrying this one forever.
                    Err(e @ samsa_common::error::Error::InvalidZnode { .. }) => {
                        error!(topic = entity_name, error = %e, "ignoring config change: unreadable topic config znode");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                info!(topic = entity_name, config = ?overrides, "processing topic config change");
                self.handler.topic_config_changed(entity_name, overrides);
            }
            config_type::USER | config_type::CLIENT => {
                let config = match zk.get_entity_config(entity_type, entity_name).await {
                    Ok(c) => c,
                    Err(e @ samsa_common::error::Error::InvalidZnode { .. }) => {
                        error!(entity = %n.entity_path, error = %e, "ignoring config change: unreadable config znode");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                // User values may be credentials: log the keys only.
                info!(entity = %n.entity_path, keys = ?config.keys().collect::<Vec<_>>(), "processing user/client config change");
                if entity_type == config_type::USER && !entity_name.contains('/') {
                    let user = samsa_common::zk::znodes::desanitize_entity_name(entity_name)
                        .unwrap_or_else(|| entity_name.to_string());
                    self.handler.user_config_changed(&user, config.clone());
                }
                match QuotaEntity::from_entity_path(&n.entity_path) {
                    Some(entity) => self.handler.quota_config_changed(&entity, &config),
                    None => {
                        warn!(entity_path = %n.entity_path, "ignoring config change with bad quota entity path")
                    }
                }
            }
            config_type::BROKER => match self.handler.broker() {
                // The layer is re-read and validated by the dynamic config; an unreadable
                // znode is logged there and skipped.
                Some(ctx) => ctx.dynamic.layer_changed(&ctx, zk, entity_name).await?,
                None => debug!(entity_name, "broker config change not applied here"),
            },
            config_type::IP => {
                let config = match zk.get_entity_config(entity_type, entity_name).await {
                    Ok(c) => c,
                    Err(e @ samsa_common::error::Error::InvalidZnode { .. }) => {
                        error!(entity = %n.entity_path, error = %e, "ignoring config change: unreadable config znode");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                info!(ip = entity_name, config = ?config, "processing ip config change");
                self.handler.ip_config_changed(entity_name, &config);
            }
            other => {
                debug!(
                    entity_type = other,
                    entity_name, "config change for an entity type Samsa does not apply"
                );
            }
        }
        Ok(())
    }
}

/// Run the listener until `shutdown` turns true. Uses whatever session the context holds.
pub fn spawn<H: ConfigChangeHandler>(
    ctx: Arc<BrokerContext>,
    handler: H,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    crate::zk_notifications::spawn(ctx, listener(handler), shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use samsa_common::zk::admin;
    use samsa_common::zk::session::ZkConfig;
    use samsa_common::zk::testing::TestZk;
    use std::sync::Mutex;
    use std::time::Duration;

    type Seen = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

    async fn wait_for(seen: &Seen, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if seen.lock().map(|v| v.len()).unwrap_or(0) >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no config change seen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn broker_handler_updates_log_config() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = std::collections::HashMap::from([
            ("zookeeper.connect".to_string(), "unused:1".to_string()),
            ("log.retention.hours".to_string(), "2".to_string()),
        ]);
        let cfg = Arc::new(samsa_common::config::BrokerConfig::from_props(&p).expect("cfg"));
        let ctx = Arc::new(BrokerContext::new(cfg.clone(), Vec::new()));
        let lm = crate::log::LogManager::open(crate::log::LogManagerConfig::new(vec![dir
            .path()
            .to_path_buf()]))
        .expect("log manager");
        let _ = ctx.log_manager.set(lm.clone());
        let tp = samsa_common::types::TopicPartition::new("t", 0);
        let base = LogConfig::from_props(&cfg.topic_defaults()).expect("defaults");
        let log = lm.get_or_create_log(&tp, None, base).expect("log");
        assert_eq!(log.config().retention_ms, 7_200_000);

        let h = BrokerTopicConfigHandler::new(&ctx);
        let o = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        h.topic_config_changed("t", o);
        assert_eq!(log.config().retention_ms, 1000);
        // Overrides removed: back to the broker default.
        h.topic_config_changed("t", BTreeMap::new());
        assert_eq!(log.config().retention_ms, 7_200_000);
        lm.shutdown().expect("shutdown");
    }

    /// Overrides written at topic creation (no change notification) reach the log that a
    /// LeaderAndIsr creates: a record above the topic's `max.message.bytes` is refused.
    #[tokio::test]
    async fn new_log_gets_topic_config_from_zookeeper() {
        use crate::log::AppendOrigin;
        use crate::replica::manager::LogProvider;
        use kafka_protocol::messages::leader_and_isr_request::{
            LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
        };
        use kafka_protocol::messages::{LeaderAndIsrRequest, TopicName};
        use kafka_protocol::protocol::StrBytes;

        let server = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            server.connect_string_with_chroot("/newlog"),
            Duration::from_secs(10),
        ))
        .await
        .expect("connect");
        zk.create_top_level_paths().await.expect("paths");
        let c = BTreeMap::from([("max.message.bytes".to_string(), "2000".to_string())]);
        let assignment = BTreeMap::from([(0, vec![1])]);
        admin::create_topic_with_assignment(&zk, "small", &c, &assignment, true)
            .await
            .expect("create topic");

        let dir = tempfile::tempdir().expect("tmp");
        let p = std::collections::HashMap::from([(
            "zookeeper.connect".to_string(),
            "unused:1".to_string(),
        )]);
        let cfg = Arc::new(samsa_common::config::BrokerConfig::from_props(&p).expect("cfg"));
        let ctx = Arc::new(BrokerContext::new(cfg, Vec::new()));
        let lm = crate::log::LogManager::open(crate::log::LogManagerConfig::new(vec![dir
            .path()
            .to_path_buf()]))
        .expect("log manager");
        let _ = ctx.log_manager.set(lm.clone());

        let mut req = LeaderAndIsrRequest::default();
        let mut ts = LeaderAndIsrTopicState::default();
        ts.topic_name = TopicName(StrBytes::from_static_str("small"));
        let mut ps = LeaderAndIsrPartitionState::default();
        ps.partition_index = 0;
        ts.partition_states = vec![ps];
        req.topic_states = vec![ts];
        let topics = crate::handlers::leader_and_isr::topics_without_local_log(&lm, &req, 7);
        assert_eq!(topics, vec!["small".to_string()]);

        load_topic_configs(&ctx, &zk, &topics).await;
        let provider = crate::replica::log_provider::ManagedLogs(lm.clone());
        let tp = samsa_common::types::TopicPartition::new("small", 0);
        let log = provider
            .get_or_create_log(&tp, None, true)
            .expect("create log");
        assert_eq!(log.config().max_message_bytes, 2000);
        let now = 1_700_000_000_000;
        let big = crate::log::tests::batch(1, 10_000, now, crate::log::CompressionCodec::None);
        let e = log
            .append_as_leader(big, 0, AppendOrigin::Client)
            .expect_err("too large");
        assert_eq!(e.code(), 10, "{e:?}");
        assert_eq!(log.log_end_offset(), 0);
        // The log exists now: later LeaderAndIsr requests don't re-read the config.
        assert!(crate::handlers::leader_and_isr::topics_without_local_log(&lm, &req, 7).is_empty());
        lm.shutdown().expect("shutdown");
    }

    #[tokio::test]
    async fn topic_changes_reach_handler() {
        let server = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            server.connect_string_with_chroot("/cc"),
            Duration::from_secs(10),
        ))
        .await
        .expect("connect");
        zk.create_top_level_paths().await.expect("paths");

        // A change written before the listener starts is handled at start-up.
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "1000".to_string());
        admin::change_entity_config(&zk, "topics", "t1", &c)
            .await
            .expect("write");

        let mut p = std::collections::HashMap::new();
        p.insert("zookeeper.connect".to_string(), "unused:1".to_string());
        let cfg = Arc::new(samsa_common::config::BrokerConfig::from_props(&p).expect("cfg"));
        let ctx = Arc::new(BrokerContext::new(cfg, Vec::new()));
        ctx.set_zk(zk.clone());

        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let (tx, rx) = watch::channel(false);
        let task = spawn(
            ctx.clone(),
            move |t: &str, o: BTreeMap<String, String>| {
                if let Ok(mut v) = s2.lock() {
                    v.push((t.to_string(), o));
                }
            },
            rx,
        );
        wait_for(&seen, 1).await;

        // A later change arrives through the children watch.
        c.insert("cleanup.policy".to_string(), "compact".to_string());
        admin::change_entity_config(&zk, "topics", "t2", &c)
            .await
            .expect("write");
        // Non-topic entities are read but not handed to the topic handler.
        admin::change_entity_config(&zk, "clients", "app", &BTreeMap::new())
            .await
            .expect("write");
        wait_for(&seen, 2).await;
        {
            let v = seen.lock().expect("lock");
            assert_eq!(v[0].0, "t1");
            assert_eq!(v[0].1.get("retention.ms").map(String::as_str), Some("1000"));
            assert_eq!(v[1].0, "t2");
            assert_eq!(
                v[1].1.get("cleanup.policy").map(String::as_str),
                Some("compact")
            );
        }
        let _ = tx.send(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("listener stops")
            .expect("join");
        assert_eq!(seen.lock().expect("lock").len(), 2);
    }

    /// Quota entities at every level are loaded at start-up (SCRAM-only users turn nothing
    /// on), and a later change notification updates them live.
    #[tokio::test]
    async fn client_quotas_load_and_follow_changes() {
        let server = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            server.connect_string_with_chroot("/ccquota"),
            Duration::from_secs(10),
        ))
        .await
        .expect("connect");
        zk.create_top_level_paths().await.expect("paths");
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        admin::change_entity_config(
            &zk,
            "users",
            "alice/clients/app",
            &one("producer_byte_rate", "100"),
        )
        .await
        .expect("write");
        admin::change_entity_config(
            &zk,
            "clients",
            "<default>",
            &one("consumer_byte_rate", "200"),
        )
        .await
        .expect("write");
        admin::change_entity_config(&zk, "users", "bob", &one("SCRAM-SHA-256", "salt=x"))
            .await
            .expect("write");

        let p = std::collections::HashMap::from([(
            "zookeeper.connect".to_string(),
            "unused:1".to_string(),
        )]);
        let cfg = Arc::new(samsa_common::config::BrokerConfig::from_props(&p).expect("cfg"));
        let ctx = Arc::new(BrokerContext::new(cfg, Vec::new()));
        load_client_quotas(&zk, &ctx.quotas).await.expect("load");
        assert_eq!(ctx.quotas.produce.quota_for("alice", "app"), Some(100.0));
        assert_eq!(ctx.quotas.produce.quota_for("alice", "other"), None);
        assert_eq!(ctx.quotas.fetch.quota_for("bob", "any"), Some(200.0));
        assert!(!ctx.quotas.request.enabled());

        let mut listener = listener(BrokerTopicConfigHandler::new(&ctx));
        let children = zk
            .children(ConfigEntityChangeNotificationZNode::PATH)
            .await
            .expect("children")
            .unwrap_or_default();
        listener.process(&zk, &children).await.expect("round");
        admin::change_entity_config(&zk, "users", "alice/clients/app", &BTreeMap::new())
            .await
            .expect("write");
        admin::change_entity_config(&zk, "clients", "app", &one("producer_byte_rate", "50"))
            .await
            .expect("write");
        let children = zk
            .children(ConfigEntityChangeNotificationZNode::PATH)
            .await
            .expect("children")
            .unwrap_or_default();
        listener.process(&zk, &children).await.expect("round");
        assert_eq!(ctx.quotas.produce.quota_for("alice", "app"), Some(50.0));
    }

    /// A topic config znode holding JSON we cannot read (written by another tool) is skipped
    /// with an error; it used to fail the whole round again and again, so no later change
    /// (here, to topic "good") was ever applied.
    #[tokio::test]
    async fn unreadable_topic_config_does_not_block_later_changes() {
        let server = TestZk::start();
        let zk = ZkSession::connect(&ZkConfig::new(
            server.connect_string_with_chroot("/ccbad"),
            Duration::from_secs(10),
        ))
        .await
        .expect("connect");
        zk.create_top_level_paths().await.expect("paths");
        let good = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        admin::change_entity_config(&zk, "topics", "bad", &good)
            .await
            .expect("write");
        zk.set(
            &samsa_common::zk::znodes::ConfigEntityZNode::path("topics", "bad"),
            b"{\"version\":1,\"config\":[not json",
            None,
        )
        .await
        .expect("clobber");
        admin::change_entity_config(&zk, "topics", "good", &good)
            .await
            .expect("write");

        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut listener = listener(move |t: &str, o: BTreeMap<String, String>| {
            if let Ok(mut v) = s2.lock() {
                v.push((t.to_string(), o));
            }
        });
        let children = zk
            .children(ConfigEntityChangeNotificationZNode::PATH)
            .await
            .expect("children")
            .unwrap_or_default();
        assert_eq!(children.len(), 2);
        listener.process(&zk, &children).await.expect("round");
        let v = seen.lock().expect("lock").clone();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0, "good");
        assert_eq!(listener.last_executed(), 1);
    }
}
