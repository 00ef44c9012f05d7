//! Coordinator flows without a network: writes succeed at once (no append installed), markers
//! count as written (no transport) unless a fake transport is installed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::codes::*;
use super::markers::{Marker, MarkerReply, MarkerTransport, Route};
use super::metadata::TxnState;
use super::ops::Tp;
use super::state::{TxnConfig, TxnCoordinator};

fn coordinator() -> Arc<TxnCoordinator> {
    let c = TxnCoordinator::new(TxnConfig {
        num_partitions: 1,
        ..TxnConfig::default()
    });
    let next = Arc::new(AtomicI64::new(1000));
    c.set_pid_source(Arc::new(move || {
        let id = next.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { Ok(id) })
    }));
    let token = c.begin_load(0, 3).expect("loads");
    assert!(c.finish_load(0, token, Some(Default::default())).is_empty());
    c
}

fn tps(v: &[(&str, i32)]) -> BTreeSet<Tp> {
    v.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

/// Wait until `txn` reaches `state` (markers complete in a spawned task).
async fn wait_state(c: &TxnCoordinator, txn: &str, state: TxnState) {
    for _ in 0..500 {
        if c.get(txn)
            .is_some_and(|m| m.state == state && m.pending.is_none())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{txn} never reached {state:?}: {:?}", c.get(txn));
}

#[tokio::test]
async fn init_add_commit_and_retries() {
    let c = coordinator();
    assert_eq!(
        c.init_producer_id("tx", 0, None).await.2,
        INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(
        c.init_producer_id("tx", 900_001, None).await.2,
        INVALID_TRANSACTION_TIMEOUT
    );
    let (pid, epoch, err) = c.init_producer_id("tx", 60_000, None).await;
    assert_eq!((pid, epoch, err), (1000, 0, NONE));
    // EndTxn with no transaction.
    assert_eq!(
        c.end_transaction("tx", pid, 0, true, true).await,
        INVALID_TXN_STATE
    );
    assert_eq!(
        c.end_transaction("tx", pid + 1, 0, true, true).await,
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        c.end_transaction("nope", pid, 0, true, true).await,
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        c.add_partitions("tx", pid, 1, &tps(&[("t", 0)])).await,
        PRODUCER_FENCED
    );
    assert_eq!(
        c.add_partitions("tx", pid, 0, &tps(&[("t", 0)])).await,
        NONE
    );
    assert_eq!(c.get("tx").map(|m| m.state), Some(TxnState::Ongoing));
    // Already present: answered at once.
    assert_eq!(
        c.add_partitions("tx", pid, 0, &tps(&[("t", 0)])).await,
        NONE
    );
    // Verification (KIP-890).
    let v = c
        .verify_partitions("tx", pid, 0, &tps(&[("t", 0), ("t", 1)]))
        .expect("verifies");
    assert_eq!(
        v,
        vec![
            (("t".into(), 0), NONE),
            (("t".into(), 1), TRANSACTION_ABORTABLE)
        ]
    );
    assert_eq!(
        c.verify_partitions("tx", pid, 5, &tps(&[("t", 0)])),
        Err(PRODUCER_FENCED)
    );
    let d = c.describe("tx");
    assert_eq!(
        (d.error, d.state.as_str(), d.partitions.len()),
        (NONE, "Ongoing", 1)
    );
    assert_eq!(c.end_transaction("tx", pid, 0, true, true).await, NONE);
    wait_state(&c, "tx", TxnState::CompleteCommit).await;
    // Retried commit: NONE; abort now: INVALID_TXN_STATE.
    assert_eq!(c.end_transaction("tx", pid, 0, true, true).await, NONE);
    assert_eq!(
        c.end_transaction("tx", pid, 0, false, true).await,
        INVALID_TXN_STATE
    );
    assert!(c.get("tx").is_some_and(|m| m.partitions.is_empty()));
    assert_eq!(c.describe("unknown").error, TRANSACTIONAL_ID_NOT_FOUND);
}

#[tokio::test]
async fn second_producer_fences_an_open_transaction() {
    let c = coordinator();
    let (pid, e0, _) = c.init_producer_id("tx", 60_000, None).await;
    assert_eq!(
        c.add_partitions("tx", pid, e0, &tps(&[("t", 0)])).await,
        NONE
    );
    // The new producer's first attempt aborts the open transaction and asks it to retry.
    let (_, _, err) = c.init_producer_id("tx", 60_000, None).await;
    assert_eq!(err, CONCURRENT_TRANSACTIONS);
    wait_state(&c, "tx", TxnState::CompleteAbort).await;
    assert_eq!(c.get("tx").map(|m| m.producer_epoch), Some(1));
    let (pid2, e2, err) = c.init_producer_id("tx", 60_000, None).await;
    assert_eq!((pid2, e2, err), (pid, 2, NONE));
    // The old producer is fenced.
    assert_eq!(
        c.add_partitions("tx", pid, e0, &tps(&[("t", 0)])).await,
        PRODUCER_FENCED
    );
    assert_eq!(
        c.end_transaction("tx", pid, e0, true, true).await,
        PRODUCER_FENCED
    );
}

#[tokio::test]
async fn exhausted_epoch_rotates_the_producer_id_and_kip360() {
    let c = coordinator();
    let (pid, _, _) = c.init_producer_id("tx", 60_000, None).await;
    {
        let mut p = c.lock();
        let m = p
            .owned
            .get_mut(&0)
            .and_then(|o| o.txns.get_mut("tx"))
            .expect("cached");
        m.producer_epoch = 32766;
    }
    let (pid2, e2, err) = c.init_producer_id("tx", 60_000, None).await;
    assert_eq!(err, NONE);
    assert_ne!(pid2, pid);
    assert_eq!(e2, 0);
    // KIP-360: recovery with the current id/epoch bumps; a stale pair is fenced.
    let (pid3, e3, err) = c.init_producer_id("tx", 60_000, Some((pid2, 0))).await;
    assert_eq!((pid3, e3, err), (pid2, 1, NONE));
    assert_eq!(
        c.init_producer_id("tx", 60_000, Some((12345, 0))).await.2,
        PRODUCER_FENCED
    );
}

#[tokio::test]
async fn loading_and_not_owned_answers() {
    let c = TxnCoordinator::new(TxnConfig {
        num_partitions: 1,
        ..TxnConfig::default()
    });
    assert_eq!(
        c.init_producer_id("tx", 1000, None).await.2,
        NOT_COORDINATOR
    );
    let token = c.begin_load(0, 1).expect("loads");
    assert_eq!(
        c.init_producer_id("tx", 1000, None).await.2,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(c.list(&[], &[], -1).0, COORDINATOR_LOAD_IN_PROGRESS);
    assert_eq!(c.describe("tx").error, COORDINATOR_LOAD_IN_PROGRESS);
    c.finish_load(0, token, Some(Default::default()));
    c.unload_partition(0);
    assert_eq!(
        c.end_transaction("tx", 1, 0, true, true).await,
        NOT_COORDINATOR
    );
}

#[tokio::test]
async fn list_filters_and_timeouts() {
    let c = coordinator();
    let (a, _, _) = c.init_producer_id("a", 60_000, None).await;
    let (b, _, _) = c.init_producer_id("b", 1, None).await;
    assert_eq!(c.add_partitions("b", b, 0, &tps(&[("t", 0)])).await, NONE);
    let (err, unknown, all) = c.list(&[], &[], -1);
    assert_eq!((err, unknown.len(), all.len()), (NONE, 0, 2));
    let (_, unknown, ongoing) = c.list(&["Ongoing".into(), "Bogus".into()], &[], -1);
    assert_eq!(unknown, vec!["Bogus".to_string()]);
    assert_eq!(ongoing, vec![("b".to_string(), b, "Ongoing")]);
    let (_, _, by_pid) = c.list(&[], &[a], -1);
    assert_eq!(by_pid, vec![("a".to_string(), a, "Empty")]);
    // "b" times out: aborted with an epoch bump that fences its producer.
    tokio::time::sleep(Duration::from_millis(5)).await;
    c.abort_timed_out(super::state::now_ms()).await;
    wait_state(&c, "b", TxnState::CompleteAbort).await;
    assert_eq!(c.get("b").map(|m| m.producer_epoch), Some(1));
    assert_eq!(
        c.end_transaction("b", b, 0, false, true).await,
        PRODUCER_FENCED
    );
}

#[tokio::test]
async fn expired_ids_are_removed() {
    let c = TxnCoordinator::new(TxnConfig {
        num_partitions: 1,
        id_expiration_ms: 0,
        ..TxnConfig::default()
    });
    c.set_pid_source(Arc::new(|| Box::pin(async { Ok(7) })));
    let token = c.begin_load(0, 0).expect("loads");
    c.finish_load(0, token, Some(Default::default()));
    assert_eq!(c.init_producer_id("x", 1000, None).await.2, NONE);
    assert_eq!(
        c.expire_transactional_ids(super::state::now_ms() + 1).await,
        1
    );
    assert!(c.get("x").is_none());
}

/// A transport that fails the first send of each partition, then succeeds, and reports a
/// deleted topic.
#[derive(Default)]
struct Flaky {
    sent: Mutex<Vec<(i32, Marker)>>,
}

impl MarkerTransport for Flaky {
    fn route(&self, tp: &Tp) -> Route {
        match tp.0.as_str() {
            "gone" => Route::Gone,
            _ => Route::Leader(tp.1 % 2),
        }
    }
    fn send(&self, broker: i32, marker: Marker) -> MarkerReply {
        let mut sent = self.sent.lock().expect("lock");
        let first = !sent.iter().any(|(b, _)| *b == broker);
        sent.push((broker, marker.clone()));
        Box::pin(async move {
            if first && broker == 1 {
                return None;
            }
            let code = if first { NOT_LEADER_OR_FOLLOWER } else { NONE };
            Some(marker.partitions.into_iter().map(|tp| (tp, code)).collect())
        })
    }
}

#[tokio::test]
async fn markers_are_batched_per_broker_retried_and_dropped_for_deleted_topics() {
    let c = coordinator();
    let t = Arc::new(Flaky::default());
    c.set_marker_transport(t.clone());
    let (pid, _, _) = c.init_producer_id("tx", 60_000, None).await;
    let parts = tps(&[("t", 0), ("t", 1), ("t", 2), ("gone", 0)]);
    assert_eq!(c.add_partitions("tx", pid, 0, &parts).await, NONE);
    assert_eq!(c.end_transaction("tx", pid, 0, true, true).await, NONE);
    // Meanwhile the id is busy.
    assert_eq!(
        c.init_producer_id("tx", 60_000, None).await.2,
        CONCURRENT_TRANSACTIONS
    );
    wait_state(&c, "tx", TxnState::CompleteCommit).await;
    let sent = t.sent.lock().expect("lock");
    // First round: one request per broker (t-0 and t-2 together on broker 0).
    let first0 = sent.iter().find(|(b, _)| *b == 0).expect("sent to 0");
    assert_eq!(first0.1.partitions.len(), 2);
    assert!(first0.1.commit);
    assert_eq!(first0.1.coordinator_epoch, 3);
    assert!(sent.iter().filter(|(b, _)| *b == 1).count() >= 2, "retried");
    assert!(!sent
        .iter()
        .any(|(_, m)| m.partitions.iter().any(|tp| tp.0 == "gone")));
}

#[tokio::test]
async fn failover_finishes_prepared_transactions() {
    use super::records::{key, value, TxnRecord};
    let recs = [(
        key("p"),
        Some(value(&TxnRecord {
            producer_id: 9,
            producer_epoch: 4,
            timeout_ms: 1000,
            state: TxnState::PrepareAbort,
            partitions: [("t".to_string(), vec![0])].into(),
            last_update_ms: 2,
            start_ms: 1,
        })),
    )];
    let rec = super::records::parse_value(recs[0].1.clone().expect("value")).expect("decodes");
    let m = super::metadata::TxnMetadata::from_record("p", &rec);
    let c = TxnCoordinator::new(TxnConfig {
        num_partitions: 1,
        ..TxnConfig::default()
    });
    let token = c.begin_load(0, 8).expect("loads");
    let pending = c.finish_load(0, token, Some([("p".to_string(), m)].into()));
    assert_eq!(pending.len(), 1);
    let (id, epoch, commit, complete) = pending.into_iter().next().expect("one");
    assert_eq!((id.as_str(), epoch, commit), ("p", 8, false));
    c.spawn_markers(id, epoch, commit, complete);
    wait_state(&c, "p", TxnState::CompleteAbort).await;
}

/// A transport whose markers are acknowledged only when the test opens the gate.
struct Gated {
    open: tokio::sync::watch::Receiver<bool>,
}

impl MarkerTransport for Gated {
    fn route(&self, tp: &Tp) -> Route {
        Route::Leader(tp.1)
    }
    fn send(&self, _broker: i32, marker: Marker) -> MarkerReply {
        let mut open = self.open.clone();
        Box::pin(async move {
            let _ = open.wait_for(|o| *o).await;
            Some(marker.partitions.into_iter().map(|tp| (tp, NONE)).collect())
        })
    }
}

#[tokio::test]
async fn next_add_partitions_waits_for_the_previous_commit_to_complete() {
    let c = coordinator();
    let (gate, open) = tokio::sync::watch::channel(false);
    c.set_marker_transport(Arc::new(Gated { open }));
    let (pid, _, _) = c.init_producer_id("tx", 60_000, None).await;
    assert_eq!(
        c.add_partitions("tx", pid, 0, &tps(&[("t", 0)])).await,
        NONE
    );
    assert_eq!(c.end_transaction("tx", pid, 0, true, true).await, NONE);

    // Markers in flight: the next transaction's AddPartitions is held, not refused...
    let c2 = c.clone();
    let next =
        tokio::spawn(async move { c2.add_partitions("tx", pid, 0, &tps(&[("t", 1)])).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!next.is_finished(), "answered before the commit completed");
    assert_eq!(c.get("tx").map(|m| m.state), Some(TxnState::PrepareCommit));
    // ...and succeeds once CompleteCommit is written.
    gate.send_replace(true);
    assert_eq!(next.await.expect("join"), NONE);
    let m = c.get("tx").expect("id");
    assert_eq!(m.state, TxnState::Ongoing);
    assert_eq!(m.partitions, tps(&[("t", 1)]));
}

#[tokio::test]
async fn add_partitions_answers_concurrent_transactions_when_markers_are_stuck() {
    let c = coordinator();
    let (_gate, open) = tokio::sync::watch::channel(false);
    c.set_marker_transport(Arc::new(Gated { open }));
    let (pid, _, _) = c.init_producer_id("tx", 60_000, None).await;
    assert_eq!(
        c.add_partitions("tx", pid, 0, &tps(&[("t", 0)])).await,
        NONE
    );
    assert_eq!(c.end_transaction("tx", pid, 0, true, true).await, NONE);
    let started = std::time::Instant::now();
    assert_eq!(
        c.add_partitions("tx", pid, 0, &tps(&[("t", 1)])).await,
        CONCURRENT_TRANSACTIONS
    );
    assert!(started.elapsed() >= super::ops::COMPLETION_WAIT);
    // A fenced producer is told so at once, waiting or not.
    assert_eq!(
        c.add_partitions("tx", pid, 5, &tps(&[("t", 1)])).await,
        PRODUCER_FENCED
    );
}
