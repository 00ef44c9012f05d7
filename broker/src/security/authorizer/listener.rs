//! The ACL change listeners (Kafka's `ZkAclChangeStore.createListener` over
//! `ZkNodeChangeNotificationListener`): one task per store watches the children of
//! `/kafka-acl-changes` or `/kafka-acl-extended-changes`, re-reads the resource node each new
//! `acl_changes_<seq>` names (all of them at start-up), and deletes handled notifications
//! older than 15 minutes. A notification that cannot be decoded is logged and skipped.
//! Like the `/config/changes` listener, each round takes the broker's current session, so
//! after a session expiry it re-lists and re-watches.

use std::sync::Arc;
use std::time::Duration;

use samsa_common::zk::acl::{AclChange, AclStore};
use samsa_common::zk::session::ZkSession;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::store::changed_pattern;
use super::Authorizer;
use crate::broker::BrokerContext;
use crate::config_change::CHANGE_EXPIRATION_MS;

/// Re-list even without a watch event this often (safety net across session changes).
const RELIST_INTERVAL: Duration = Duration::from_secs(30);

/// One store's listener state.
pub struct AclChangeListener {
    store: AclStore,
    last_executed: i64,
}

impl AclChangeListener {
    pub fn new(store: AclStore) -> Self {
        Self {
            store,
            last_executed: -1,
        }
    }

    /// Handles every notification in `children` newer than the last handled one, in order,
    /// then purges expired handled ones. ZooKeeper failures end the round with `Err` (the
    /// notification is retried next round).
    pub async fn process(
        &mut self,
        authorizer: &Authorizer,
        zk: &ZkSession,
        children: &[String],
    ) -> samsa_common::error::Result<()> {
        let mut seqs: Vec<(i64, &String)> = children
            .iter()
            .filter_map(|c| AclChange::sequence(c).map(|s| (s, c)))
            .collect();
        seqs.sort_unstable();
        let dir = self.store.changes_path();
        for (seq, child) in &seqs {
            if *seq <= self.last_executed {
                continue;
            }
            let path = format!("{dir}/{child}");
            match zk.get(&path).await? {
                Some((data, _)) => match AclChange::decode(self.store, &path, &data) {
                    Ok(change) => match changed_pattern(&change) {
                        Some(p) => authorizer.reload_resource(zk, &p).await?,
                        None => warn!(path, resource_type = %change.resource_type_enum,
                            "ignoring ACL change for an unknown resource type"),
                    },
                    Err(e) => warn!(path, error = %e, "ignoring malformed ACL change notification"),
                },
                None => warn!(path, "ACL change notification vanished before it was read"),
            }
            self.last_executed = *seq;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        for (seq, child) in &seqs {
            if *seq > self.last_executed {
                continue;
            }
            let path = format!("{dir}/{child}");
            if let Some(stat) = zk.exists(&path).await? {
                if now - stat.ctime > CHANGE_EXPIRATION_MS {
                    debug!(path, "purging expired ACL change notification");
                    zk.delete(&path, None).await?;
                }
            }
        }
        Ok(())
    }
}

/// Runs both stores' listeners until `shutdown` turns true.
pub fn spawn(ctx: Arc<BrokerContext>, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    AclStore::ALL
        .into_iter()
        .map(|store| tokio::spawn(run(ctx.clone(), store, shutdown.clone())))
        .collect()
}

async fn run(ctx: Arc<BrokerContext>, store: AclStore, mut shutdown: watch::Receiver<bool>) {
    let mut listener = AclChangeListener::new(store);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = match ctx.zk() {
            None => None,
            Some(zk) => match zk.children_and_watch(store.changes_path()).await {
                Ok((children, w)) => {
                    let children = children.unwrap_or_default();
                    if let Err(e) = listener
                        .process(&ctx.security.authorizer, &zk, &children)
                        .await
                    {
                        warn!(path = store.changes_path(), error = %e, "processing ACL changes failed; will retry");
                    }
                    Some(w)
                }
                Err(e) => {
                    warn!(path = store.changes_path(), error = %e, "listing ACL changes failed; will retry");
                    None
                }
            },
        };
        let delay = if wait.is_some() {
            RELIST_INTERVAL
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = async {
                match wait {
                    Some(w) => { w.changed().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {}
        }
    }
}
