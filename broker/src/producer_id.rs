//! Producer id allocation for idempotent producers (Kafka's `ZkProducerIdManager`).
//!
//! Ids come in blocks of 1000 claimed from `/latest_producer_id_block` with a
//! conditional (zkVersion-checked) write, retried on conflict — see
//! `samsa_common::zk::admin::allocate_producer_id_block`. A block is claimed lazily on
//! the first request and whenever the current one runs out. Kafka 3.9 at IBP ≥ 3.0
//! routes the claim through the controller (AllocateProducerIds); the znode written
//! is the same.

use samsa_common::error::Result;
use samsa_common::types::BrokerId;
use samsa_common::zk::admin::allocate_producer_id_block;
use samsa_common::zk::session::ZkSession;
use tokio::sync::Mutex;

/// Hands out producer ids from the broker's current block.
#[derive(Debug)]
pub struct ProducerIdManager {
    /// `(next id, last id of the block)`; `next > end` means "need a new block".
    state: Mutex<(i64, i64)>,
}

impl Default for ProducerIdManager {
    fn default() -> Self {
        Self::new()
    }
}

impl ProducerIdManager {
    pub fn new() -> Self {
        Self {
            state: Mutex::new((0, -1)),
        }
    }

    /// The next producer id, claiming a new block from ZooKeeper when needed.
    /// (The lock is held across the rare block claim on purpose: concurrent callers
    /// must not claim two blocks.)
    pub async fn generate(&self, zk: &ZkSession, broker_id: BrokerId) -> Result<i64> {
        let mut s = self.state.lock().await;
        if s.0 > s.1 {
            let block = allocate_producer_id_block(zk, broker_id).await?;
            tracing::info!(
                broker = broker_id,
                start = block.block_start,
                end = block.block_end,
                "acquired new producerId block"
            );
            *s = (block.block_start, block.block_end);
        }
        let id = s.0;
        s.0 += 1;
        Ok(id)
    }
}
