//! Partitions this broker hosts: leader/follower state, high watermark, purgatories, fetchers.

pub mod alter_log_dirs;
pub mod alter_partition;
pub mod fetch_session;
pub mod fetcher;
pub mod log_dir_failure;
pub mod log_provider;
pub mod manager;
pub mod offsets;
pub mod partition;
pub mod partition_state;
pub mod purgatory;
#[cfg(test)]
pub mod testing;
pub mod txn_verification;

use std::sync::Arc;

use crate::broker::BrokerContext;
use crate::log::LogManager;

/// Start-up hook: build the replica manager over `log_manager` from the broker
/// config, install it in `ctx`, hook liveness to the metadata cache, install the
/// AlterPartition sender and start the ISR-shrink task.
pub fn start(
    ctx: &Arc<BrokerContext>,
    log_manager: Arc<LogManager>,
) -> Arc<manager::ReplicaManager> {
    let c = &ctx.config;
    let mut rc = manager::ReplicaConfig::new(ctx.broker_id);
    rc.replica_lag_time_max_ms = c.replica_lag_time_max_ms.max(0) as u64;
    rc.client_security = ctx.security.client();
    let fc = fetcher::FetcherConfig {
        max_wait_ms: c.replica_fetch_wait_max_ms,
        min_bytes: c.replica_fetch_min_bytes,
        response_max_bytes: c.replica_fetch_response_max_bytes,
        partition_max_bytes: c.replica_fetch_max_bytes,
        backoff_ms: c.replica_fetch_backoff_ms.max(0) as u64,
    };
    let rm = manager::ReplicaManager::with_fetcher_config(
        rc,
        Arc::new(log_provider::ManagedLogs(log_manager)),
        fc,
    );
    let weak = Arc::downgrade(ctx);
    rm.set_alive_fn(Arc::new(move |id| {
        weak.upgrade()
            .map(|ctx| ctx.metadata_cache.snapshot().is_alive(id))
            .unwrap_or(false)
    }));
    if ctx.replica_manager.set(rm.clone()).is_err() {
        tracing::warn!("replica manager already installed");
    }
    alter_partition::install(ctx);
    rm.spawn_background();
    rm
}
