//! End-to-end test harness: the only crate that spawns processes.
//!
//! * [`zk::ZkFixture`] — a real ZooKeeper (`zkServer.sh start-foreground`) on a free port, one per test binary
//!   ([`zk::ZkFixture::shared`]); each test works in its own chroot.
//! * [`broker::Broker`] / [`cluster::Cluster`] — `samsa-broker` processes with their own ports, log dirs and
//!   log files, readiness via ApiVersions, kill -9 / SIGTERM / restart helpers, and a scan of each broker's log
//!   for unexpected `ERROR` lines when the test ends.
//! * [`clients`] — Python (confluent-kafka, kafka-python), Java (Kafka client 3.9.1 single-file programs under
//!   `integration-tests/java/`), kcat, and a raw Kafka-protocol connection ([`wire`]).
//! * [`zk::Zk`] — a blocking ZooKeeper client for assertions on znodes.
//!
//! Every wait has a deadline ([`util::wait_until`]); no bare sleeps.

pub mod broker;
pub mod clients;
pub mod cluster;
pub mod scale;
pub mod util;
pub mod wire;
pub mod zk;

pub use broker::{Broker, BrokerSpec};
pub use cluster::Cluster;
pub use util::{wait_until, TestDir};
pub use zk::{Zk, ZkFixture};
