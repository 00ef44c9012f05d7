//! `/controller` election, resignation, and epoch-fenced ZooKeeper writes.
//!
//! Election (spec §2.4): read `/controller`; if absent, read (or create as `0`) the
//! `/controller_epoch` and atomically create the ephemeral `/controller` together with a
//! conditional set of the epoch to `E+1`. Every later controller write is a `multi` starting
//! with `check(/controller_epoch, epochZkVersion)` so a deposed controller cannot write.

use samsa_common::zk::session::{CreateMode, Stat, ZkOp, ZkOpResult};
use samsa_common::zk::znodes::{ControllerEpochZNode, ControllerZNode};
use tracing::{info, warn};

use crate::context::ControllerContext;
use crate::error::{Error, Result};
use crate::event_loop::{Controller, WatchKey};

impl Controller {
    /// Read `/controller` (arming the watch every broker keeps on it).
    async fn read_controller_id(&mut self) -> Result<Option<i32>> {
        match self
            .get_watched(WatchKey::Controller, ControllerZNode::PATH)
            .await?
        {
            None => Ok(None),
            Some((d, _)) => match ControllerZNode::decode(&d) {
                Ok(z) => Ok(Some(z.broker_id)),
                Err(e) => {
                    warn!(error = %e, "unreadable /controller; treating as another controller");
                    Ok(Some(-1))
                }
            },
        }
    }

    /// Kafka's `elect()`.
    pub(crate) async fn elect(&mut self) -> Result<()> {
        if let Some(id) = self.read_controller_id().await? {
            self.active_id = Some(id);
            self.publish();
            return Ok(());
        }
        let (epoch, version) = match self.zk.get_controller_epoch().await? {
            Some(ev) => ev,
            None => {
                match self
                    .zk
                    .create(
                        ControllerEpochZNode::PATH,
                        &ControllerEpochZNode::encode(0),
                        CreateMode::Persistent,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_node_exists() => {}
                    Err(e) => return Err(e.into()),
                }
                self.zk
                    .get_controller_epoch()
                    .await?
                    .ok_or_else(|| Error::Conflict(ControllerEpochZNode::PATH.into()))?
            }
        };
        let me = self.cfg.broker_id;
        // `/controller_epoch` is plain text any tool can write; Kafka's Java int wraps at
        // i32::MAX, and so do we (instead of panicking in the election).
        let ops = [
            ZkOp::create(
                ControllerZNode::PATH,
                ControllerZNode::new(me).encode(),
                CreateMode::Ephemeral,
            ),
            ZkOp::set(
                ControllerEpochZNode::PATH,
                ControllerEpochZNode::encode(epoch.wrapping_add(1)),
                Some(version),
            ),
        ];
        let won = match self.zk.multi(&ops).await {
            Ok(results) => {
                let v = results
                    .iter()
                    .find_map(|r| match r {
                        ZkOpResult::SetData { stat } => Some(stat.version),
                        _ => None,
                    })
                    .unwrap_or(version + 1);
                Some((epoch.wrapping_add(1), v))
            }
            Err(e) if e.is_node_exists() || e.is_bad_version() => {
                // Maybe our own multi succeeded and the reply was lost.
                let id = self.read_controller_id().await?;
                let now = self.zk.get_controller_epoch().await?;
                match (id, now) {
                    (Some(id), Some((e2, v2))) if id == me && e2 == epoch.wrapping_add(1) => {
                        Some((e2, v2))
                    }
                    (id, _) => {
                        self.active_id = id;
                        self.publish();
                        None
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        let Some((new_epoch, epoch_zk_version)) = won else {
            return Ok(());
        };
        // Re-arm the /controller watch (the node now exists).
        let _ = self.read_controller_id().await?;
        self.ctx = ControllerContext {
            epoch: new_epoch,
            epoch_zk_version,
            ..Default::default()
        };
        self.active = true;
        self.active_id = Some(me);
        self.publish();
        if let Err(e) = self.on_controller_failover().await {
            warn!(error = %e, "controller failover failed; resigning");
            self.resign();
            if !e.is_controller_moved() {
                // Give the role up so another broker (or we, on the watch) can retry.
                let _ = self.delete_controller_znode().await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// `/controller` changed or vanished (every broker watches it).
    pub(crate) async fn on_controller_change(&mut self) -> Result<()> {
        let id = self.read_controller_id().await?;
        let was_active = self.active;
        self.active_id = id;
        if was_active && id != Some(self.cfg.broker_id) {
            info!(new_controller = ?id, "controller moved; resigning");
            self.resign();
        }
        self.publish();
        if id.is_none() {
            self.elect().await?;
        }
        Ok(())
    }

    /// After a failed fence: resign only if `/controller` names someone else.
    pub(crate) async fn check_controller_moved(&mut self) -> Result<()> {
        let id = self.zk.get_controller_id().await?;
        self.active_id = id;
        if self.active && id != Some(self.cfg.broker_id) {
            self.resign();
        }
        self.publish();
        if id.is_none() {
            self.elect().await?;
        }
        Ok(())
    }

    /// Kafka's `onControllerResignation`: drop all controller state, close channels.
    pub(crate) fn resign(&mut self) {
        if self.active {
            info!(broker = self.cfg.broker_id, "resigning as controller");
        }
        self.active = false;
        self.channels.shutdown();
        self.ctx = ControllerContext::default();
        self.batch = crate::broker_channel::RequestBatch::new();
        self.generation += 1;
        self.reset_watches();
        self.publish();
        // Keep watching /controller in the new generation.
        if !self.session_alive {
            return;
        }
        let tx = self.events.clone();
        let _ = tx.send(crate::event_loop::Event::Watch {
            generation: self.generation,
            key: WatchKey::Controller,
            event: samsa_common::zk::session::WatchedEvent::new(
                samsa_common::zk::session::EventType::NodeDataChanged,
                ControllerZNode::PATH,
            ),
        });
    }

    pub(crate) async fn delete_controller_znode(&mut self) -> Result<()> {
        match self.zk.get(ControllerZNode::PATH).await? {
            Some((d, stat)) => {
                if ControllerZNode::decode(&d).map(|z| z.broker_id).ok() == Some(self.cfg.broker_id)
                {
                    self.zk
                        .delete(ControllerZNode::PATH, Some(stat.version))
                        .await?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    // ------------------------------------------------------------------ fenced writes

    pub(crate) async fn fenced(&self, ops: &[ZkOp]) -> Result<Vec<ZkOpResult>> {
        match self.zk.fenced_multi(self.ctx.epoch_zk_version, ops).await {
            Ok(r) => Ok(r),
            Err(samsa_common::error::Error::ControllerMoved) => Err(Error::ControllerMoved),
            Err(e) => Err(e.into()),
        }
    }

    /// Fenced setData; returns the new stat.
    pub(crate) async fn fenced_set(
        &self,
        path: &str,
        data: Vec<u8>,
        version: Option<i32>,
    ) -> Result<Stat> {
        let r = self.fenced(&[ZkOp::set(path, data, version)]).await?;
        match r.into_iter().next() {
            Some(ZkOpResult::SetData { stat }) => Ok(stat),
            _ => Ok(self
                .zk
                .exists(path)
                .await?
                .ok_or_else(|| Error::Conflict(path.to_string()))?),
        }
    }

    /// Fenced persistent create; `Ok(false)` if the node already existed.
    pub(crate) async fn fenced_create(&self, path: &str, data: Vec<u8>) -> Result<bool> {
        match self
            .fenced(&[ZkOp::create(path, data, CreateMode::Persistent)])
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Zk(e)) if e.is_node_exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fenced delete of one node (any version); a missing node is fine.
    pub(crate) async fn fenced_delete(&self, path: &str) -> Result<()> {
        match self.fenced(&[ZkOp::delete(path, None)]).await {
            Ok(_) => Ok(()),
            Err(Error::Zk(e)) if e.is_no_node() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Fenced recursive delete, children first.
    pub(crate) async fn fenced_delete_recursive(&self, path: &str) -> Result<()> {
        let mut stack = vec![(path.to_string(), false)];
        while let Some((p, expanded)) = stack.pop() {
            if expanded {
                self.fenced_delete(&p).await?;
                continue;
            }
            stack.push((p.clone(), true));
            for c in self.zk.children(&p).await?.unwrap_or_default() {
                stack.push((format!("{p}/{c}"), false));
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
        BrokerInfo, ControllerEpochZNode, ControllerZNode, EndPoint, SecurityProtocol,
        TopicPartitionStateZNode, TopicZNode,
    };
    use tokio::sync::{mpsc, watch};

    use crate::error::Error;
    use crate::event_loop::Controller;
    use crate::ControllerConfig;

    async fn session(zkd: &TestZk) -> ZkSession {
        let cfg = ZkConfig::new(
            zkd.connect_string_with_chroot("/fence"),
            Duration::from_secs(6),
        );
        let zk = ZkSession::connect(&cfg).await.unwrap();
        zk.create_top_level_paths().await.unwrap();
        zk
    }

    /// A controller whose `/controller_epoch` zkVersion went stale (a successor won the
    /// election while it was not looking) has every state write rejected, leaves the
    /// znodes as the successor wrote them, and resigns once it sees `/controller` moved.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deposed_controller_writes_are_fenced() {
        let zkd = TestZk::start();
        let zk = session(&zkd).await;
        // Broker 1 (us) registered on a closed port; topic t with one partition led by 1.
        let ep = EndPoint {
            listener_name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 1,
            security_protocol: SecurityProtocol::Plaintext,
        };
        let info = BrokerInfo::new(1, vec![ep], None, -1);
        zk.create_checked_ephemeral(&info.path(), &info.encode(), None)
            .await
            .unwrap();
        zk.create(
            &TopicZNode::path("t"),
            br#"{"version":1,"partitions":{"0":[1]}}"#,
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        let tp = TopicPartition::new("t", 0);
        zk.create_recursive(
            &TopicPartitionStateZNode::path(&tp),
            br#"{"controller_epoch":0,"leader":1,"version":1,"leader_epoch":0,"isr":[1]}"#,
            CreateMode::Persistent,
        )
        .await
        .unwrap();

        // The event loop is not running: the test drives the controller directly.
        let (tx, _rx) = mpsc::unbounded_channel();
        let (status_tx, _status_rx) = watch::channel(Default::default());
        let mut c = Controller::new(zk.clone(), ControllerConfig::new(1), tx, status_tx);
        c.elect().await.unwrap();
        assert!(c.active);
        assert_eq!(c.ctx.epoch, 1);
        let stale_version = c.ctx.epoch_zk_version;

        // A successor (broker 2, its own session) takes over exactly as `elect` does.
        let zk2 = session(&zkd).await;
        zk2.delete(ControllerZNode::PATH, None).await.unwrap();
        let (e, v) = zk2.get_controller_epoch().await.unwrap().unwrap();
        assert_eq!((e, v), (1, stale_version));
        zk2.multi(&[
            ZkOp::create(
                ControllerZNode::PATH,
                ControllerZNode::new(2).encode(),
                CreateMode::Ephemeral,
            ),
            ZkOp::set(
                ControllerEpochZNode::PATH,
                ControllerEpochZNode::encode(2),
                Some(v),
            ),
        ])
        .await
        .unwrap();
        let state_path = TopicPartitionStateZNode::path(&tp);
        let (before, before_stat) = zk.get(&state_path).await.unwrap().unwrap();

        // The old controller still believes it is active and tries to shrink the ISR, to
        // create a topic and to delete a deletion marker: all fenced.
        assert!(c.active);
        let r = c
            .update_leadership(&tp, |l| {
                let mut n = l.clone();
                n.leader = -1;
                n.leader_epoch += 1;
                Some(n)
            })
            .await;
        assert!(matches!(r, Err(Error::ControllerMoved)), "{r:?}");
        let r = c
            .fenced_create(
                &TopicZNode::path("u"),
                br#"{"version":1,"partitions":{"0":[1]}}"#.to_vec(),
            )
            .await;
        assert!(matches!(r, Err(Error::ControllerMoved)), "{r:?}");
        zk2.create("/admin/delete_topics/t", b"", CreateMode::Persistent)
            .await
            .unwrap();
        let r = c.fenced_delete("/admin/delete_topics/t").await;
        assert!(matches!(r, Err(Error::ControllerMoved)), "{r:?}");

        let (after, after_stat) = zk.get(&state_path).await.unwrap().unwrap();
        assert_eq!(after, before, "state znode untouched");
        assert_eq!(after_stat.version, before_stat.version);
        assert!(zk.exists(&TopicZNode::path("u")).await.unwrap().is_none());
        assert!(zk.exists("/admin/delete_topics/t").await.unwrap().is_some());
        assert_eq!(zk.get_controller_epoch().await.unwrap().unwrap().0, 2);

        // The failed fence makes it look at /controller: it names broker 2, so we resign.
        c.check_controller_moved().await.unwrap();
        assert!(!c.active);
        assert_eq!(c.active_id, Some(2));
        assert_eq!(zk.get_controller_id().await.unwrap(), Some(2));
    }

    /// `/controller_epoch` at i32::MAX (any tool can write it, and elections only ever add
    /// one): the election wraps as Kafka does instead of panicking, and the new epoch fences
    /// writes as usual.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn election_wraps_a_controller_epoch_at_i32_max() {
        let zkd = TestZk::start();
        let zk = session(&zkd).await;
        zk.create(
            ControllerEpochZNode::PATH,
            &ControllerEpochZNode::encode(i32::MAX),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let (status_tx, _status_rx) = watch::channel(Default::default());
        let mut c = Controller::new(zk.clone(), ControllerConfig::new(1), tx, status_tx);
        c.elect().await.unwrap();
        assert!(c.active);
        assert_eq!(c.ctx.epoch, i32::MIN);
        assert_eq!(
            zk.get_controller_epoch().await.unwrap().unwrap().0,
            i32::MIN
        );
        c.fenced_create("/admin/delete_topics/x", Vec::new())
            .await
            .unwrap();
    }
}
