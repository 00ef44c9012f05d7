//! Pipelined and packed ZooKeeper calls for work that touches many partitions at once
//! (controller failover, broker failure, controlled shutdown).
//!
//! Awaiting one request before sending the next costs a full round trip per partition:
//! 10,000 partitions × ~0.5 ms is seconds. Kafka (since 1.1) instead issues these calls
//! asynchronously and collects the answers. Here reads of one batch are all in flight on the
//! one session at once (in batches of [`IN_FLIGHT`]); ZooKeeper answers a session's requests
//! in order, so the batch costs about one round trip plus the server's own work. Writes go
//! further: [`PACK`] partitions' `state` writes share one fenced `multi` (check
//! `/controller_epoch`, then the sets), so ZooKeeper logs one transaction for them. A deposed
//! controller is fenced exactly as before; a pack that fails otherwise (a BADVERSION on one
//! partition) is redone one fenced `multi` per write, so one conflict never fails the others.

use std::collections::HashSet;

use futures::future::join_all;
use samsa_common::types::{BrokerId, TopicPartition};
use samsa_common::zk::session::{Stat, ZkOp, ZkOpResult};
use samsa_common::zk::znodes::TopicPartitionStateZNode;

use crate::context::LeaderIsrAndControllerEpoch;
use crate::error::{Error, Result};
use crate::event_loop::Controller;
use crate::leader_selection::remove_replica_from_isr;

/// Requests of one batch in flight at once: enough to hide the round trip, few enough that
/// the session's outgoing queue and ZooKeeper's per-connection queue stay small.
pub(crate) const IN_FLIGHT: usize = 512;

/// Partition writes packed into one fenced `multi`: ZooKeeper then logs, syncs and answers
/// one transaction (with one epoch check) for that many partitions instead of one each. At
/// ~150 bytes per write a pack is ~30 KB, far below `jute.maxbuffer`.
pub(crate) const PACK: usize = 200;

/// One conditional `state` write: path, data, expected version.
type Write = (String, Vec<u8>, i32);

/// Packed `multi`s in flight at once.
const PACKS_IN_FLIGHT: usize = 8;

impl Controller {
    /// Fenced conditional setData of every `(path, data, expected version)`; the results come
    /// back in input order. Writes go [`PACK`] to a fenced `multi`, several `multi`s in
    /// flight. A `multi` is all-or-nothing, so one that fails for any reason but a moved
    /// controller (a BADVERSION on one partition, say) is redone one write per `multi`,
    /// pipelined, and each write gets its own outcome exactly as if never packed.
    pub(crate) async fn fenced_sets_pipelined(
        &self,
        writes: Vec<(String, Vec<u8>, i32)>,
    ) -> Vec<Result<Stat>> {
        let mut out: Vec<Option<Result<Stat>>> = Vec::with_capacity(writes.len());
        out.resize_with(writes.len(), || None);
        let mut redo: Vec<usize> = Vec::new();
        let packs: Vec<(usize, &[Write])> = writes
            .chunks(PACK)
            .enumerate()
            .map(|(i, c)| (i * PACK, c))
            .collect();
        for wave in packs.chunks(PACKS_IN_FLIGHT) {
            // Futures collected before the await: no closure lives across it (keeps the
            // controller's future Send).
            let futs: Vec<_> = wave
                .iter()
                .map(|(_, pack)| {
                    let ops: Vec<ZkOp> = pack
                        .iter()
                        .map(|(path, data, v)| ZkOp::set(path.clone(), data.clone(), Some(*v)))
                        .collect();
                    async move { self.fenced(&ops).await }
                })
                .collect();
            for ((first, pack), r) in wave.iter().zip(join_all(futs).await) {
                match r {
                    Ok(results) if results.len() == pack.len() => {
                        for (i, res) in results.into_iter().enumerate() {
                            out[first + i] = Some(match res {
                                ZkOpResult::SetData { stat } => Ok(stat),
                                _ => Err(Error::Conflict(pack[i].0.clone())),
                            });
                        }
                    }
                    Err(Error::ControllerMoved) => {
                        for slot in &mut out[*first..first + pack.len()] {
                            *slot = Some(Err(Error::ControllerMoved));
                        }
                    }
                    _ => redo.extend(*first..first + pack.len()),
                }
            }
        }
        for batch in redo.chunks(IN_FLIGHT) {
            let futs: Vec<_> = batch
                .iter()
                .map(|&i| {
                    let (path, data, version) = &writes[i];
                    self.fenced_set(path, data.clone(), Some(*version))
                })
                .collect();
            for (&i, r) in batch.iter().zip(join_all(futs).await) {
                out[i] = Some(r);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Conflict("unwritten".into()))))
            .collect()
    }

    /// Replicas going offline leave their partitions' ISRs: every `state` znode write of
    /// the batch pipelined, the context updated with what was written. Only the first
    /// replica of each partition is done here; a later one of the same partition, a
    /// BADVERSION, or a partition written by a newer controller is left for the sequential
    /// `update_leadership` that follows. Returns the pairs written here, which that
    /// sequential pass must skip (removing a sole ISR member only clears the leader, so a
    /// second pass would write again).
    pub(crate) async fn shrink_isrs_pipelined(
        &mut self,
        replicas: &[(TopicPartition, BrokerId)],
    ) -> Result<HashSet<(TopicPartition, BrokerId)>> {
        let mut done = HashSet::new();
        let mut seen = HashSet::new();
        let mut plans = Vec::new();
        for (tp, r) in replicas {
            if !seen.insert(tp) {
                continue;
            }
            let Some(cur) = self.ctx.leadership.get(tp) else {
                continue;
            };
            if cur.controller_epoch > self.ctx.epoch {
                continue;
            }
            if let Some(lai) = remove_replica_from_isr(&cur.leader_and_isr, *r) {
                let next = LeaderIsrAndControllerEpoch {
                    leader_and_isr: lai,
                    controller_epoch: self.ctx.epoch,
                };
                plans.push((tp.clone(), *r, next, cur.leader_and_isr.partition_epoch));
            }
        }
        if plans.is_empty() {
            return Ok(done);
        }
        let writes = plans
            .iter()
            .map(|(tp, _, next, v)| {
                (
                    TopicPartitionStateZNode::path(tp),
                    next.to_znode().encode(),
                    *v,
                )
            })
            .collect();
        let results = self.fenced_sets_pipelined(writes).await;
        for ((tp, replica, mut next, _), r) in plans.into_iter().zip(results) {
            match r {
                Ok(stat) => {
                    next.leader_and_isr.partition_epoch = stat.version;
                    self.ctx.leadership.insert(tp.clone(), next);
                    done.insert((tp, replica));
                }
                Err(Error::Zk(e)) if e.is_bad_version() => self.refresh_leadership(&tp).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Re-read the `state` znode of every partition in `parts` into the context, pipelined
    /// (the batch form of `refresh_leadership`).
    pub(crate) async fn refresh_leadership_many(&mut self, parts: &[TopicPartition]) -> Result<()> {
        let mut read = Vec::with_capacity(parts.len());
        for batch in parts.chunks(IN_FLIGHT) {
            let futs: Vec<_> = batch
                .iter()
                .map(|tp| self.zk.get_partition_state(tp))
                .collect();
            read.extend(batch.iter().zip(join_all(futs).await));
        }
        for (tp, r) in read {
            match r {
                Ok(Some((z, v))) => {
                    self.ctx
                        .leadership
                        .insert(tp.clone(), LeaderIsrAndControllerEpoch::from_znode(&z, v));
                }
                Ok(None) => {
                    self.ctx.leadership.remove(tp);
                }
                Err(e) if matches!(e, samsa_common::error::Error::InvalidZnode { .. }) => {
                    tracing::error!(partition = %tp, error = %e, "unreadable partition state");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use samsa_common::types::TopicPartition;
    use samsa_common::zk::session::{CreateMode, ZkConfig, ZkOp, ZkSession};
    use samsa_common::zk::testing::TestZk;
    use samsa_common::zk::znodes::{
        BrokerInfo, EndPoint, SecurityProtocol, TopicPartitionStateZNode, TopicZNode,
    };
    use tokio::sync::{mpsc, watch};

    use crate::event_loop::Controller;
    use crate::leader_selection::ElectionStrategy;
    use crate::partition_state::ElectionOutcome;
    use crate::replica_state::ReplicaState;
    use crate::ControllerConfig;

    const PARTS: i32 = 300;

    /// Brokers 1 and 2 (closed ports), topic `t` with `parts` partitions on [1, 2], each
    /// led by 1 with ISR [1, 2]; a controller (broker 1) elected over them.
    async fn setup(zkd: &TestZk) -> (ZkSession, Controller) {
        setup_n(zkd, PARTS).await
    }

    async fn setup_n(zkd: &TestZk, parts_n: i32) -> (ZkSession, Controller) {
        let cfg = ZkConfig::new(
            zkd.connect_string_with_chroot("/pipeline"),
            Duration::from_secs(6),
        );
        let zk = ZkSession::connect(&cfg).await.unwrap();
        zk.create_top_level_paths().await.unwrap();
        for id in [1, 2] {
            let ep = EndPoint {
                listener_name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 1,
                security_protocol: SecurityProtocol::Plaintext,
            };
            let info = BrokerInfo::new(id, vec![ep], None, -1);
            zk.create_checked_ephemeral(&info.path(), &info.encode(), None)
                .await
                .unwrap();
        }
        let parts: Vec<String> = (0..parts_n).map(|p| format!("\"{p}\":[1,2]")).collect();
        let topic = format!(r#"{{"version":1,"partitions":{{{}}}}}"#, parts.join(","));
        zk.create(
            &TopicZNode::path("t"),
            topic.as_bytes(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        for p in 0..parts_n {
            zk.create_recursive(
                &TopicPartitionStateZNode::path(&TopicPartition::new("t", p)),
                br#"{"controller_epoch":0,"leader":1,"version":1,"leader_epoch":0,"isr":[1,2]}"#,
                CreateMode::Persistent,
            )
            .await
            .unwrap();
        }
        let (tx, _rx) = mpsc::unbounded_channel();
        let (status_tx, _status_rx) = watch::channel(Default::default());
        let mut c = Controller::new(zk.clone(), ControllerConfig::new(1), tx, status_tx);
        c.elect().await.unwrap();
        assert!(c.active);
        (zk, c)
    }

    async fn state(zk: &ZkSession, p: i32) -> (TopicPartitionStateZNode, i32) {
        zk.get_partition_state(&TopicPartition::new("t", p))
            .await
            .unwrap()
            .unwrap()
    }

    /// Failover loads every partition's leadership (pipelined reads); a controlled shutdown
    /// of broker 1 moves all PARTS leaders to 2 in one pipelined batch, including a
    /// partition whose znode moved behind the controller's back (BADVERSION → redone).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_elections_write_every_partition_and_redo_conflicts() {
        let zkd = TestZk::start();
        let (zk, mut c) = setup(&zkd).await;
        let all: Vec<TopicPartition> = (0..PARTS).map(|p| TopicPartition::new("t", p)).collect();
        for tp in &all {
            let l = &c.ctx.leadership[tp];
            assert_eq!(
                (l.leader_and_isr.leader, l.leader_and_isr.isr.clone()),
                (1, vec![1, 2])
            );
        }
        // Partition 7's znode is rewritten by someone else (same content, new version).
        let tp7 = TopicPartition::new("t", 7);
        let (z7, _) = state(&zk, 7).await;
        zk.multi(&[ZkOp::set(
            TopicPartitionStateZNode::path(&tp7),
            z7.encode(),
            None,
        )])
        .await
        .unwrap();

        c.ctx.shutting_down.insert(1);
        let out = c
            .partitions_to_online(&all, ElectionStrategy::ControlledShutdown)
            .await
            .unwrap();
        assert_eq!(out.len(), PARTS as usize);
        assert!(
            out.iter().all(|(_, o)| *o == ElectionOutcome::Elected),
            "{out:?}"
        );
        for p in 0..PARTS {
            let (z, version) = state(&zk, p).await;
            assert_eq!(z.leader, 2, "partition {p}");
            assert_eq!(z.isr, vec![2], "partition {p}");
            assert_eq!(z.leader_epoch, 1, "partition {p}");
            let l = &c.ctx.leadership[&TopicPartition::new("t", p)];
            assert_eq!(l.leader_and_isr.partition_epoch, version, "partition {p}");
            assert_eq!(version, if p == 7 { 2 } else { 1 }, "partition {p}");
        }
    }

    /// Broker 2 going offline leaves every ISR in one pipelined batch; the context holds
    /// exactly what ZooKeeper holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offline_replicas_leave_every_isr() {
        let zkd = TestZk::start();
        let (zk, mut c) = setup(&zkd).await;
        let replicas: Vec<(TopicPartition, i32)> = (0..PARTS)
            .map(|p| (TopicPartition::new("t", p), 2))
            .collect();
        c.replicas_to_state(&replicas, ReplicaState::Offline)
            .await
            .unwrap();
        for p in 0..PARTS {
            let (z, version) = state(&zk, p).await;
            assert_eq!((z.leader, z.isr.clone()), (1, vec![1]), "partition {p}");
            let l = &c.ctx.leadership[&TopicPartition::new("t", p)];
            assert_eq!(l.leader_and_isr.isr, vec![1]);
            assert_eq!(l.leader_and_isr.partition_epoch, version);
        }
    }

    /// By hand (a measurement, not a check): the same controlled-shutdown elections of
    /// `SAMSA_PIPELINE_PARTS` (2,000) partitions done one ZooKeeper call at a time (the old
    /// path) and pipelined, against one local ZooKeeper:
    /// `cargo test -p samsa-controller --lib pipeline::tests::timing -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement run by hand"]
    async fn timing_sequential_vs_pipelined_elections() {
        let n: i32 = std::env::var("SAMSA_PIPELINE_PARTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let zkd = TestZk::start();
        let (_zk, mut c) = setup_n(&zkd, n).await;
        let all: Vec<TopicPartition> = (0..n).map(|p| TopicPartition::new("t", p)).collect();
        // Load: the pipelined reads of a failover.
        let t = std::time::Instant::now();
        c.refresh_leadership_many(&all).await.unwrap();
        let load = t.elapsed();
        // 1 → 2 one at a time.
        c.ctx.shutting_down.insert(1);
        let t = std::time::Instant::now();
        for tp in &all {
            let o = c
                .elect_leader(tp, ElectionStrategy::ControlledShutdown)
                .await
                .unwrap();
            assert_eq!(o, ElectionOutcome::Elected);
        }
        let sequential = t.elapsed();
        // 2 → 1 pipelined (ISR is [2] now; put 1 back first, one batch of ISR writes).
        c.ctx.shutting_down.clear();
        for tp in &all {
            c.ctx.leadership.get_mut(tp).unwrap().leader_and_isr.isr = vec![2, 1];
        }
        c.refresh_leadership_many(&all).await.unwrap();
        let writes = all
            .iter()
            .map(|tp| {
                let mut l = c.ctx.leadership[tp].clone();
                let v = l.leader_and_isr.partition_epoch;
                l.leader_and_isr.isr = vec![2, 1];
                (TopicPartitionStateZNode::path(tp), l.to_znode().encode(), v)
            })
            .collect();
        for r in c.fenced_sets_pipelined(writes).await {
            r.unwrap();
        }
        c.refresh_leadership_many(&all).await.unwrap();
        c.ctx.shutting_down.insert(2);
        let t = std::time::Instant::now();
        let out = c
            .elect_leaders(&all, ElectionStrategy::ControlledShutdown)
            .await
            .unwrap();
        let pipelined = t.elapsed();
        assert!(out.iter().all(|(_, o)| *o == ElectionOutcome::Elected));
        println!(
            "{n} partitions: load (pipelined reads) {load:?}; elections one at a time {sequential:?}, pipelined {pipelined:?}"
        );
    }
}
