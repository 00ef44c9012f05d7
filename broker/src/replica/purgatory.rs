//! Delayed produce and delayed fetch, as change signals rather than a timer wheel.
//!
//! Every partition owns a [`PartitionSignal`], a `watch` counter bumped when its
//! log grows, its high watermark or log start moves, or its leadership changes.
//! A parked request subscribes to the signals of its partitions, re-checks its
//! completion condition, and otherwise sleeps until one of them changes or its
//! deadline passes ([`wait_any`]). Nothing here holds a lock while waiting, and
//! the appending task never does work on behalf of waiters beyond one counter
//! bump, so appends stay cheap.

use std::future::Future;
use std::pin::Pin;

use futures::future::select_all;
use tokio::sync::watch;
use tokio::time::Instant;

/// Change counter for one partition.
#[derive(Debug)]
pub struct PartitionSignal {
    tx: watch::Sender<u64>,
}

impl Default for PartitionSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl PartitionSignal {
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(0);
        Self { tx }
    }

    /// Wake everyone waiting on this partition.
    pub fn bump(&self) {
        self.tx.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that sees changes made after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        rx
    }
}

/// Wait until any receiver sees a change (true) or `deadline` passes (false).
/// With no receivers this just sleeps until the deadline.
pub async fn wait_any(rxs: &mut [watch::Receiver<u64>], deadline: Instant) -> bool {
    if rxs.is_empty() {
        tokio::time::sleep_until(deadline).await;
        return false;
    }
    let futs: Vec<Pin<Box<dyn Future<Output = bool> + Send + '_>>> = rxs
        .iter_mut()
        .map(|rx| {
            Box::pin(async move { rx.changed().await.is_ok() })
                as Pin<Box<dyn Future<Output = bool> + Send + '_>>
        })
        .collect();
    match tokio::time::timeout_at(deadline, select_all(futs)).await {
        Ok((true, _, _)) => true,
        // The sender is gone (partition removed): treat as a change so the
        // waiter re-checks and notices.
        Ok((false, _, _)) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn bump_wakes_waiter() {
        let a = Arc::new(PartitionSignal::new());
        let b = Arc::new(PartitionSignal::new());
        let mut rxs = vec![a.subscribe(), b.subscribe()];
        let b2 = b.clone();
        let waker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            b2.bump();
        });
        let start = Instant::now();
        assert!(wait_any(&mut rxs, start + Duration::from_secs(10)).await);
        assert!(start.elapsed() < Duration::from_secs(5));
        waker.await.expect("join");
    }

    #[tokio::test]
    async fn deadline_without_change() {
        let a = PartitionSignal::new();
        let mut rxs = vec![a.subscribe()];
        let start = Instant::now();
        assert!(!wait_any(&mut rxs, start + Duration::from_millis(50)).await);
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn change_before_wait_is_seen() {
        let a = PartitionSignal::new();
        let mut rxs = vec![a.subscribe()];
        a.bump();
        assert!(wait_any(&mut rxs, Instant::now() + Duration::from_secs(10)).await);
    }
}
