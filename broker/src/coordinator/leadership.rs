//! What the group and transaction coordinators share: following the leadership of their
//! internal topic's partitions (Kafka's `GroupCoordinator.onElection/onResignation` and
//! `TransactionStateManager.loadTransactionsForTxnTopicPartition`, run on one scheduler thread).
//!
//! Becoming leader of a partition loads it in a blocking task (its keys answer
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile); losing it unloads it. The replica manager calls its
//! leadership listeners inside LeaderAndIsr with the partition's transition lock held, while
//! coordinator code that holds its own locks appends (taking that lock), so the listener only
//! queues the change and one task applies the changes in order.

use std::sync::Arc;

use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::log::Log;

/// A coordinator whose state lives in the partitions of one internal topic.
pub(crate) trait PartitionLoader: Send + Sync + 'static {
    /// The internal topic (`__consumer_offsets`, `__transaction_state`).
    const TOPIC: &'static str;
    /// Names the coordinator in logs.
    const NAME: &'static str;
    /// What a load read from one partition.
    type Loaded: Send + 'static;

    /// This coordinator, from the broker's context.
    fn of(ctx: &BrokerContext) -> Arc<Self>;
    /// Partition count of the topic: the existing topic's, else the configured one.
    fn partition_count(ctx: &BrokerContext) -> i32;
    /// The load's read buffer (`offsets.load.buffer.size`,
    /// `transaction.state.log.load.buffer.size`).
    fn load_buffer_size(ctx: &BrokerContext) -> usize;

    fn set_partition_count(&self, n: i32);
    fn unload_partition(&self, partition: i32);
    /// A load token, or `None` when there is nothing to load (an older epoch, or already owned
    /// or loading).
    fn begin_load(&self, partition: i32, epoch: i32) -> Option<u64>;
    /// Read the partition; `None` if the load was given up (leadership lost meanwhile).
    fn load(log: &Log, buffer: usize, still_leader: &dyn Fn() -> bool) -> Option<Self::Loaded>;
    /// Install what the load read, unless superseded (runs inside the runtime).
    fn finish_load(self: &Arc<Self>, partition: i32, token: u64, loaded: Option<Self::Loaded>);
}

/// Follow the leadership of `C::TOPIC`'s partitions from now on (see the module docs).
pub(crate) fn follow<C: PartitionLoader>(ctx: &Arc<BrokerContext>) {
    let Ok(rm) = ctx.replicas() else { return };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    type Change = (TopicPartition, Option<i32>);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Change>();
    rm.add_leadership_listener(Arc::new(move |tp, epoch| {
        if tp.topic == C::TOPIC {
            let _ = tx.send((tp.clone(), epoch));
        }
    }));
    let weak = Arc::downgrade(ctx);
    rt.spawn(async move {
        while let Some((tp, epoch)) = rx.recv().await {
            let Some(ctx) = weak.upgrade() else { return };
            // One bad change must not end this loop: every later load and unload of the
            // topic's partitions goes through it.
            let change = std::panic::AssertUnwindSafe(|| on_change::<C>(&ctx, tp, epoch));
            if let Err(p) = std::panic::catch_unwind(change) {
                tracing::error!(
                    coordinator = C::NAME,
                    panic = %crate::supervise::panic_message(p.as_ref()),
                    "coordinator leadership change panicked"
                );
            }
        }
    });
}

/// Load (became leader in `epoch`) or unload (`None`) one partition.
fn on_change<C: PartitionLoader>(ctx: &Arc<BrokerContext>, tp: TopicPartition, epoch: Option<i32>) {
    let coord = C::of(ctx);
    coord.set_partition_count(C::partition_count(ctx));
    let p = tp.partition;
    let Some(epoch) = epoch else {
        coord.unload_partition(p);
        return;
    };
    let Some(log) = ctx.log_manager().and_then(|lm| lm.get_log(&tp)) else {
        return;
    };
    let Some(token) = coord.begin_load(p, epoch) else {
        return;
    };
    let buffer = C::load_buffer_size(ctx).max(1);
    let weak = Arc::downgrade(ctx);
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let rt2 = rt.clone();
    rt.spawn_blocking(move || {
        let still_leader = || {
            let Some(c) = weak.upgrade() else {
                return false;
            };
            c.replicas()
                .is_ok_and(|rm| rm.leader_partition(&tp).is_ok())
        };
        let load = std::panic::AssertUnwindSafe(|| C::load(&log, buffer, &still_leader));
        let loaded = match std::panic::catch_unwind(load) {
            Ok(l) => l,
            Err(panic) => {
                // Left loading on purpose: its keys answer COORDINATOR_LOAD_IN_PROGRESS (clients
                // retry) until leadership moves, rather than serving a partial state.
                tracing::error!(
                    coordinator = C::NAME,
                    topic = C::TOPIC,
                    partition = p,
                    panic = %crate::supervise::panic_message(panic.as_ref()),
                    "loading a coordinator partition panicked"
                );
                return;
            }
        };
        let _guard = rt2.enter();
        coord.finish_load(p, token, loaded);
    });
}
