//! N brokers on one ZooKeeper chroot, with a ZooKeeper view for assertions and an end-of-test log scan.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::broker::{Broker, BrokerSpec};
use crate::util::{self, TestDir};
use crate::zk::{Zk, ZkFixture};

pub struct ClusterBuilder {
    name: String,
    specs: Vec<BrokerSpec>,
    common: Vec<(String, String)>,
    start: bool,
}

impl ClusterBuilder {
    /// `n` brokers with ids 1..=n.
    pub fn brokers(mut self, n: i32) -> Self {
        self.specs = (1..=n).map(BrokerSpec::id).collect();
        self
    }

    /// Explicit broker specs.
    pub fn specs(mut self, specs: Vec<BrokerSpec>) -> Self {
        self.specs = specs;
        self
    }

    /// A property for every broker (spec props win).
    pub fn prop(mut self, k: &str, v: impl ToString) -> Self {
        self.common.push((k.to_string(), v.to_string()));
        self
    }

    /// Only write configs; the test starts brokers itself.
    pub fn configure_only(mut self) -> Self {
        self.start = false;
        self
    }

    pub fn start(self) -> Cluster {
        let zkf = ZkFixture::shared();
        let dir = TestDir::new(&self.name);
        let chroot = format!("/{}", util::unique(&self.name));
        let zk_connect = format!("{}{}", zkf.connect_string(), chroot);
        let n = self.specs.len();
        let mut brokers = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let mut spec = spec.clone();
            let mut props = self.common.clone();
            props.append(&mut spec.props);
            spec.props = props;
            // Index in the name: two specs may share an id (duplicate-registration tests).
            let id = spec
                .id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "auto".into());
            let bdir = dir.path().join(format!("broker-{i}-id{id}"));
            brokers
                .push(Broker::configure(&bdir, &zk_connect, &spec, n).expect("configure broker"));
        }
        let zk = Zk::connect(&zkf.connect_string(), &chroot).expect("connect ZooKeeper");
        let mut c = Cluster {
            zk,
            chroot,
            zk_connect,
            brokers,
            finished: false,
            _dir: dir,
        };
        if self.start {
            for b in &mut c.brokers {
                b.spawn().expect("spawn broker");
            }
            for b in &mut c.brokers {
                if let Err(e) = b.wait_ready(Duration::from_secs(60)) {
                    panic!("{e:#}");
                }
            }
        }
        c
    }
}

pub struct Cluster {
    zk: Zk,
    pub chroot: String,
    /// `127.0.0.1:<zkport>/<chroot>` as given to the brokers.
    pub zk_connect: String,
    pub brokers: Vec<Broker>,
    finished: bool,
    _dir: TestDir,
}

impl Cluster {
    /// A builder; `name` (short, lowercase) names the test dir and the chroot.
    pub fn builder(name: &str) -> ClusterBuilder {
        ClusterBuilder {
            name: name.to_string(),
            specs: vec![BrokerSpec::id(1)],
            common: Vec::new(),
            start: true,
        }
    }

    /// One broker (id 1), started.
    pub fn single(name: &str) -> Cluster {
        Cluster::builder(name).start()
    }

    /// `host:port,...` of all brokers.
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(Broker::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// ZooKeeper view rooted at this cluster's chroot.
    pub fn zk(&self) -> &Zk {
        &self.zk
    }

    pub fn broker(&mut self, id: i32) -> &mut Broker {
        self.brokers
            .iter_mut()
            .find(|b| b.id == Some(id))
            .unwrap_or_else(|| panic!("no broker {id}"))
    }

    /// Waits until `/brokers/ids/<id>` exists for every broker with a known id.
    /// Then waits until every broker's metadata cache (its Metadata answer) lists all of them:
    /// CreateTopics assigns replicas over the brokers the serving broker knows, so an RF=3
    /// topic created before the UpdateMetadata arrived fails with INVALID_REPLICATION_FACTOR
    /// (on Kafka too).
    pub fn wait_registered(&self, timeout: Duration) {
        let mut ids = Vec::new();
        for b in &self.brokers {
            if let Some(id) = b.id {
                self.zk.wait_for(&format!("/brokers/ids/{id}"), timeout);
                ids.push(id);
            }
        }
        ids.sort();
        for b in self.brokers.iter().filter(|b| b.id.is_some()) {
            let addr = b.addr();
            util::wait_until(
                &format!("brokers {ids:?} in the metadata of {addr}"),
                timeout,
                || (metadata_broker_ids(&addr)? == ids).then_some(()),
            );
        }
    }

    /// Restarts a broker after `kill -9`: waits until its old session's `/brokers/ids/<id>` is gone
    /// (a new registration would fail with NODEEXISTS before that), then starts it and waits for readiness.
    pub fn restart_killed(&mut self, id: i32) -> Result<()> {
        self.zk
            .wait_gone(&format!("/brokers/ids/{id}"), Duration::from_secs(30));
        self.broker(id).start()
    }

    /// SIGTERM every broker, then fail the test if any broker log has unexpected ERROR lines.
    pub fn finish(mut self) {
        self.finished = true;
        let mut problems = Vec::new();
        for b in &mut self.brokers {
            if b.is_running() {
                if let Err(e) = b.stop(Duration::from_secs(40)) {
                    problems.push(format!("{e:#}"));
                }
            }
        }
        problems.extend(self.scan_errors());
        if !problems.is_empty() {
            panic!("problems found at end of test:\n{}", problems.join("\n"));
        }
    }

    /// Unexpected ERROR lines across all broker logs, prefixed with the broker.
    pub fn scan_errors(&self) -> Vec<String> {
        self.brokers
            .iter()
            .flat_map(|b| {
                b.error_lines()
                    .into_iter()
                    .map(move |l| format!("broker {:?}: {l}", b.id))
            })
            .collect()
    }

    pub fn check_no_errors(&self) -> Result<()> {
        let errs = self.scan_errors();
        if errs.is_empty() {
            Ok(())
        } else {
            bail!("unexpected ERROR lines:\n{}", errs.join("\n"))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for b in &self.brokers {
                eprintln!(
                    "--- last lines of broker {:?} log ({}):\n{}",
                    b.id,
                    b.log_path.display(),
                    b.log_tail(25)
                );
            }
        }
        for b in &mut self.brokers {
            b.kill9();
        }
        if !self.finished && !std::thread::panicking() {
            let errs = self.scan_errors();
            if !errs.is_empty() {
                panic!("unexpected ERROR lines:\n{}", errs.join("\n"));
            }
        }
    }
}

/// Sorted broker ids in `addr`'s Metadata answer (no topics requested); None while unreachable.
fn metadata_broker_ids(addr: &str) -> Option<Vec<i32>> {
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
    let mut conn = crate::wire::Conn::connect(addr).ok()?;
    let req = MetadataRequest::default().with_topics(Some(vec![]));
    let resp: MetadataResponse = conn.request(ApiKey::Metadata, 9, &req).ok()?;
    let mut ids: Vec<i32> = resp.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    Some(ids)
}
