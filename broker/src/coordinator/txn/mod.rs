//! The transaction coordinator (Kafka 3.9's `TransactionCoordinator` family), hosted by the
//! leader of each `__transaction_state` partition.
//!
//! * `records`  — the key/value formats of `__transaction_state` (golden-tested);
//! * `metadata` — one transactional id's state machine;
//! * `state`    — owned partitions, the id cache, write-then-apply, load/unload, expiration;
//! * `load`     — replaying a partition on becoming its leader;
//! * `ops`      — the request logic (InitProducerId, AddPartitions, EndTxn, Describe, List);
//! * `markers`  — WriteTxnMarkers to partition leaders, then Complete*.
//!
//! [`install`] hooks it to the broker: leadership changes of `__transaction_state` partitions
//! load (COORDINATOR_LOAD_IN_PROGRESS meanwhile, coordinator epoch = leader epoch) or unload
//! them, writes go through the replica manager with acks -1, producer ids come from the
//! broker's id blocks, and two timers abort timed-out transactions and expire idle ids.

pub mod load;
pub mod markers;
pub mod metadata;
pub mod ops;
pub mod records;
pub mod state;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use state::{TxnConfig, TxnCoordinator};

/// The internal topic this coordinator is backed by.
pub const TOPIC: &str = "__transaction_state";

/// Kafka error codes the coordinator uses.
pub mod codes {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    pub const TRANSACTION_ABORTABLE: i16 = 120;
}

/// The coordinator's settings from the broker config.
pub fn config_from(c: &samsa_common::config::BrokerConfig) -> TxnConfig {
    TxnConfig {
        max_timeout_ms: c.transaction_max_timeout_ms,
        id_expiration_ms: i64::from(c.transactional_id_expiration_ms),
        num_partitions: c.transaction_state_log_num_partitions,
        request_timeout_ms: c.request_timeout_ms,
    }
}

/// Refresh the coordinator's partition count from the metadata cache (handlers call this first,
/// so ids map to partitions as FindCoordinator mapped them even when the existing topic's count
/// differs from `transaction.state.log.num.partitions`).
pub fn sync_partition_count(ctx: &crate::broker::BrokerContext) {
    ctx.txns.set_partition_count(partition_count(ctx));
}

/// Partition count of `__transaction_state`: the existing topic's, else the configured one.
fn partition_count(ctx: &crate::broker::BrokerContext) -> i32 {
    ctx.metadata_cache
        .snapshot()
        .topics
        .get(TOPIC)
        .map(|t| t.partitions.len() as i32)
        .filter(|n| *n > 0)
        .unwrap_or(ctx.config.transaction_state_log_num_partitions)
}

impl crate::coordinator::leadership::PartitionLoader for TxnCoordinator {
    const TOPIC: &'static str = TOPIC;
    const NAME: &'static str = "transaction";
    type Loaded = std::collections::HashMap<String, metadata::TxnMetadata>;

    fn of(ctx: &crate::broker::BrokerContext) -> Arc<Self> {
        ctx.txns.clone()
    }
    fn partition_count(ctx: &crate::broker::BrokerContext) -> i32 {
        partition_count(ctx)
    }
    fn load_buffer_size(ctx: &crate::broker::BrokerContext) -> usize {
        ctx.config.transaction_state_log_load_buffer_size.max(1) as usize
    }
    fn set_partition_count(&self, n: i32) {
        TxnCoordinator::set_partition_count(self, n)
    }
    fn unload_partition(&self, partition: i32) {
        TxnCoordinator::unload_partition(self, partition)
    }
    fn begin_load(&self, partition: i32, epoch: i32) -> Option<u64> {
        TxnCoordinator::begin_load(self, partition, epoch)
    }
    fn load(
        log: &crate::log::Log,
        buffer: usize,
        still_leader: &dyn Fn() -> bool,
    ) -> Option<Self::Loaded> {
        load::load_partition(log, buffer, still_leader)
    }
    /// Transactions left in PrepareCommit/PrepareAbort get their markers (re)sent.
    fn finish_load(self: &Arc<Self>, partition: i32, token: u64, loaded: Option<Self::Loaded>) {
        for (id, coordinator_epoch, commit, complete) in
            TxnCoordinator::finish_load(self, partition, token, loaded)
        {
            tracing::info!(
                transactional_id = id,
                commit,
                "completing a prepared transaction after load"
            );
            self.spawn_markers(id, coordinator_epoch, commit, complete);
        }
    }
}

/// Hook the coordinator to the broker (see the module doc).
pub fn install(ctx: &Arc<crate::broker::BrokerContext>) {
    if ctx.replicas().is_err() {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    crate::coordinator::leadership::follow::<TxnCoordinator>(ctx);

    // Writes: one record batch to the partition, acks -1, origin coordinator.
    let weak = Arc::downgrade(ctx);
    ctx.txns.set_append(Arc::new(
        move |partition, coordinator_epoch, recs, timeout| {
            let Some(ctx) = weak.upgrade() else {
                return Box::pin(std::future::ready(codes::COORDINATOR_NOT_AVAILABLE));
            };
            let Ok(rm) = ctx.replicas() else {
                return Box::pin(std::future::ready(codes::COORDINATOR_NOT_AVAILABLE));
            };
            let tp = samsa_common::types::TopicPartition {
                topic: TOPIC.to_string(),
                partition,
            };
            // Only the leader in the coordinator epoch the write was prepared in may append it.
            if !rm
                .leader_partition(&tp)
                .is_ok_and(|p| p.leader_epoch() == coordinator_epoch)
            {
                return Box::pin(std::future::ready(codes::NOT_LEADER_OR_FOLLOWER));
            }
            let pending = rm.append_records_now(
                -1,
                crate::log::AppendOrigin::Coordinator,
                vec![(
                    tp,
                    crate::coordinator::group::records::batch(&recs, state::now_ms()),
                )],
            );
            Box::pin(async move {
                let out = pending.wait(timeout).await;
                out.first()
                    .map(|(_, r)| r.error_code)
                    .unwrap_or(codes::NONE)
            })
        },
    ));

    // Producer ids: the broker's blocks (claimed from the controller / ZooKeeper).
    let weak = Arc::downgrade(ctx);
    ctx.txns.set_pid_source(Arc::new(move || {
        let weak = weak.clone();
        Box::pin(async move {
            let Some(ctx) = weak.upgrade() else {
                return Err(codes::COORDINATOR_NOT_AVAILABLE);
            };
            let Some(zk) = ctx.zk() else {
                return Err(codes::COORDINATOR_LOAD_IN_PROGRESS);
            };
            ctx.producer_ids
                .generate(&zk, ctx.broker_id)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "could not claim a producer id block");
                    codes::COORDINATOR_LOAD_IN_PROGRESS
                })
        })
    }));

    ctx.txns
        .set_marker_transport(markers::NetTransport::new(ctx));

    // transaction.abort.timed.out.transaction.cleanup.interval.ms
    let weak = Arc::downgrade(ctx);
    let period = Duration::from_millis(
        ctx.config
            .transaction_abort_timed_out_transaction_cleanup_interval_ms
            .max(1) as u64,
    );
    rt.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(ctx) = weak.upgrade() else { return };
            let coord = ctx.txns.clone();
            drop(ctx);
            coord.abort_timed_out(state::now_ms()).await;
        }
    });

    // transaction.remove.expired.transaction.cleanup.interval.ms
    let weak = Arc::downgrade(ctx);
    let period = Duration::from_millis(
        ctx.config
            .transaction_remove_expired_transaction_cleanup_interval_ms
            .max(1) as u64,
    );
    rt.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(ctx) = weak.upgrade() else { return };
            let coord = ctx.txns.clone();
            drop(ctx);
            let n = coord.expire_transactional_ids(state::now_ms()).await;
            if n > 0 {
                tracing::info!(ids = n, "expired transactional ids");
            }
        }
    });
}
