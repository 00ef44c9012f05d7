//! The log-dir failure handler (Kafka's `ReplicaManager.LogDirFailureHandler`, ZK mode).
//!
//! An I/O error in a log dir (a full disk, EIO, EFBIG past `RLIMIT_FSIZE`) marks the dir
//! offline in the `LogManager`, which queues it once on its failed-dirs channel. This task
//! takes each dir off that queue and, in Kafka's order:
//! 1. takes every hosted partition in the dir offline (fetchers stopped; produce, fetch,
//!    LeaderAndIsr and StopReplica answer KAFKA_STORAGE_ERROR for it until restart);
//! 2. halts the process (exit status 1, no clean shutdown) if no log dir is left online,
//!    as Kafka's `LogManager.handleLogDirFailure` does;
//! 3. otherwise writes a `/log_dir_event_notification` znode so the controller moves
//!    leadership and ISR membership off the failed replicas.
//!
//! Kafka 3.9 in ZK mode halts on a single failed dir only with an inter-broker protocol
//! older than 1.0, which Samsa does not support; so one dir failing never halts a JBOD broker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::broker::BrokerContext;
use crate::log::LogManager;

/// Starts the handler on the current runtime; it runs for the life of the process.
pub fn spawn(ctx: Arc<BrokerContext>, lm: Arc<LogManager>) {
    let Some(rx) = lm.take_failed_dirs() else {
        tracing::warn!("log-dir failure handler already running");
        return;
    };
    tokio::spawn(run(ctx, lm, rx));
}

async fn run(ctx: Arc<BrokerContext>, lm: Arc<LogManager>, mut rx: UnboundedReceiver<PathBuf>) {
    while let Some(dir) = rx.recv().await {
        tracing::warn!(
            dir = %dir.display(),
            "stopping serving replicas in dir because the log directory has failed"
        );
        if let Some(rm) = ctx.replica_manager.get() {
            rm.handle_log_dir_failure(&dir);
        }
        lm.close_dir_handles(&dir);
        if lm.live_dirs().is_empty() {
            let all: Vec<String> = lm
                .offline_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            tracing::error!(
                "Shutdown broker because all log dirs in {} have failed",
                all.join(", ")
            );
            // Kafka's `Exit.halt(1)`: no controlled shutdown, no flush, no clean-shutdown
            // marker; the registration goes with the ZooKeeper session.
            std::process::exit(1);
        }
        propagate(&ctx).await;
        tracing::warn!(dir = %dir.display(), "stopped serving replicas in dir");
    }
}

/// Writes the notification, retrying (like Kafka's `retryRequestUntilConnected`) while
/// ZooKeeper is unreachable; the session in the context is the current one after renewal.
async fn propagate(ctx: &BrokerContext) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(session) = ctx.zk() else {
            // Network-only test brokers have no ZooKeeper: nobody to tell.
            return;
        };
        match crate::zk_broker::propagate_log_dir_event(&session, ctx.broker_id).await {
            Ok(path) => {
                tracing::info!(%path, "log dir failure sent to the controller");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the log dir event notification; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
