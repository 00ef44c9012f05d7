//! The ACL change listeners (Kafka's `ZkAclChangeStore.createListener` over
//! `ZkNodeChangeNotificationListener`): one task per store watches the children of
//! `/kafka-acl-changes` or `/kafka-acl-extended-changes`, re-reads the resource node each new
//! `acl_changes_<seq>` names (all of them at start-up), and deletes handled notifications
//! older than 15 minutes. A notification that cannot be decoded is logged and skipped.
//! The loop itself is the shared [`crate::zk_notifications`] listener.

use std::sync::Arc;

use samsa_common::zk::acl::{AclChange, AclStore, CHANGE_PREFIX};
use samsa_common::zk::session::ZkSession;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use super::store::changed_pattern;
use crate::broker::BrokerContext;
use crate::zk_notifications::{NotificationHandler, NotificationListener};

/// One store's notification handler (Kafka's `AclChangedNotificationHandler`): re-reads the
/// resource a notification names into the authorizer's cache.
pub struct AclChangeHandler {
    ctx: Arc<BrokerContext>,
    store: AclStore,
}

impl NotificationHandler for AclChangeHandler {
    async fn process_notification(
        &mut self,
        zk: &ZkSession,
        path: &str,
        data: &[u8],
    ) -> samsa_common::error::Result<()> {
        match AclChange::decode(self.store, path, data) {
            Ok(change) => match changed_pattern(&change) {
                Some(p) => self.ctx.security.authorizer.reload_resource(zk, &p).await?,
                None => warn!(path, resource_type = %change.resource_type_enum,
                    "ignoring ACL change for an unknown resource type"),
            },
            Err(e) => warn!(path, error = %e, "ignoring malformed ACL change notification"),
        }
        Ok(())
    }
}

/// The listener for one store's change directory.
pub fn listener(
    ctx: Arc<BrokerContext>,
    store: AclStore,
) -> NotificationListener<AclChangeHandler> {
    NotificationListener::new(
        store.changes_path(),
        CHANGE_PREFIX,
        AclChangeHandler { ctx, store },
    )
}

/// Runs both stores' listeners until `shutdown` turns true.
pub fn spawn(ctx: Arc<BrokerContext>, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    AclStore::ALL
        .into_iter()
        .map(|store| {
            crate::zk_notifications::spawn(
                ctx.clone(),
                listener(ctx.clone(), store),
                shutdown.clone(),
            )
        })
        .collect()
}
