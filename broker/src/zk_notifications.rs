//! One listener for ZooKeeper's sequential change notifications (Kafka's
//! `ZkNodeChangeNotificationListener`), shared by `/config/changes`, the two ACL change
//! directories and `/delegation_token/token_changes`.
//!
//! Whoever changes shared state writes it, then creates a persistent sequential child
//! `<root>/<prefix><10-digit seq>` naming what changed. Each broker watches the children of
//! `<root>`, hands every notification with a sequence above the last one it handled (all of
//! them at start-up) to a [`NotificationHandler`], and deletes handled notifications older
//! than 15 minutes. Each round takes the broker's current session from
//! [`BrokerContext::zk`], so after a session expiry it re-lists and re-watches; a timer
//! re-lists every 30 s in case a watch was lost.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use samsa_common::zk::session::ZkSession;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::broker::BrokerContext;

/// Handled notifications older than this are deleted (Kafka's `changeExpirationMs`).
pub const CHANGE_EXPIRATION_MS: i64 = 15 * 60 * 1000;

/// Re-list even without a watch event this often (safety net across session changes).
const RELIST_INTERVAL: Duration = Duration::from_secs(30);

/// After a failed listing, try again this soon.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// What one notification directory means (Kafka's `NotificationHandler`).
pub trait NotificationHandler: Send + Sync + 'static {
    /// The handler's view of one notification: `path` is the notification znode, `data` its
    /// bytes. A notification that cannot be decoded should be logged and return `Ok` (Kafka
    /// moves on); `Err` (a ZooKeeper failure) ends the round and retries it later.
    fn process_notification(
        &mut self,
        zk: &ZkSession,
        path: &str,
        data: &[u8],
    ) -> impl Future<Output = samsa_common::error::Result<()>> + Send;
}

/// One directory's listener state: where it looks and the last sequence handled.
pub struct NotificationListener<H> {
    root: &'static str,
    prefix: &'static str,
    handler: H,
    last_executed: i64,
}

impl<H: NotificationHandler> NotificationListener<H> {
    /// Listens to the children of `root` named `<prefix><sequence>`.
    pub fn new(root: &'static str, prefix: &'static str, handler: H) -> Self {
        Self {
            root,
            prefix,
            handler,
            last_executed: -1,
        }
    }

    /// Sequence of the last handled notification (-1 before the first).
    pub fn last_executed(&self) -> i64 {
        self.last_executed
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    fn sequence(&self, child: &str) -> Option<i64> {
        child.strip_prefix(self.prefix)?.parse().ok()
    }

    /// Handles every notification in `children` newer than the last handled one, in order,
    /// then purges expired handled ones. ZooKeeper failures end the round with `Err`; the
    /// unhandled notifications are retried next round.
    pub async fn process(
        &mut self,
        zk: &ZkSession,
        children: &[String],
    ) -> samsa_common::error::Result<()> {
        let mut seqs: Vec<(i64, &String)> = children
            .iter()
            .filter_map(|c| self.sequence(c).map(|s| (s, c)))
            .collect();
        seqs.sort_unstable();
        for (seq, child) in &seqs {
            if *seq <= self.last_executed {
                continue;
            }
            let path = format!("{}/{}", self.root, child);
            match zk.get(&path).await? {
                Some((data, _)) => self.handler.process_notification(zk, &path, &data).await?,
                None => debug!(path, "change notification vanished before it was read"),
            }
            self.last_executed = *seq;
        }
        self.purge(zk, &seqs).await
    }

    async fn purge(
        &self,
        zk: &ZkSession,
        seqs: &[(i64, &String)],
    ) -> samsa_common::error::Result<()> {
        let now = now_ms();
        for (seq, child) in seqs {
            if *seq > self.last_executed {
                continue;
            }
            let path = format!("{}/{}", self.root, child);
            if let Some(stat) = zk.exists(&path).await? {
                if now - stat.ctime > CHANGE_EXPIRATION_MS {
                    debug!(path, "purging expired change notification");
                    zk.delete(&path, None).await?;
                }
            }
        }
        Ok(())
    }

    /// One round: list and watch `root`, process. Returns the watch to wait on, or `None`
    /// when there is no session or the listing failed.
    async fn round(&mut self, ctx: &BrokerContext) -> Option<samsa_common::zk::session::ZkWatch> {
        let zk = ctx.zk()?;
        match zk.children_and_watch(self.root).await {
            Ok((children, w)) => {
                if let Err(e) = self.process(&zk, &children.unwrap_or_default()).await {
                    warn!(path = self.root, error = %e, "processing change notifications failed; will retry");
                }
                Some(w)
            }
            Err(e) => {
                warn!(path = self.root, error = %e, "listing change notifications failed; will retry");
                None
            }
        }
    }
}

/// Runs `listener` until `shutdown` turns true, with whatever session the context holds.
pub fn spawn<H: NotificationHandler>(
    ctx: Arc<BrokerContext>,
    mut listener: NotificationListener<H>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = listener.round(&ctx).await;
            let delay = if wait.is_some() {
                RELIST_INTERVAL
            } else {
                RETRY_INTERVAL
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
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
