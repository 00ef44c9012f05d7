//! Exactly-once consume-transform-produce under crashes: the Java 3.9.1 client's read_committed
//! consumer and transactional producer (`java/Eos.java`, `sendOffsetsToTransaction`) copy an input
//! topic to an output topic while `kill -9` hits, in turn, the transaction coordinator's broker, the
//! leader of an output partition and the producer process itself. Afterwards the output read with
//! read_committed holds every input record exactly once and the group's committed offsets are the
//! input's end offsets. Three brokers, RF 3, `min.insync.replicas=2`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use samsa_integration_tests::{clients, util, wait_until, Cluster};
use serde_json::Value;

use crate::common::{client_config, create_topic};
use crate::transactions::find_coordinator;

const T: Duration = Duration::from_secs(180);
const INPUT: &str = "eos-in";
const OUTPUT: &str = "eos-out";
const GROUP: &str = "eos-group";
const TXN_ID: &str = "eos-tx";
/// Input records (split over 2 partitions); the output topic has 3.
const N: i64 = 2000;
/// Input records let through per phase (about 8 transactions of 50).
const STEP: i64 = 400;

/// One run of `Eos.java run`, its stdout/stderr in files the test reads while it runs.
struct EosProcess {
    child: Child,
    watchdog: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl EosProcess {
    fn start(dir: &Path, run: usize, bootstrap: &str, gate: &Path) -> EosProcess {
        let stdout = dir.join(format!("eos-{run}.out"));
        let stderr = dir.join(format!("eos-{run}.err"));
        let args: Vec<String> = [
            "run",
            bootstrap,
            INPUT,
            OUTPUT,
            GROUP,
            TXN_ID,
            gate.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let child = clients::java_command("Eos", &args)
            .unwrap()
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let watchdog = util::spawn_watchdog(child.id());
        EosProcess {
            child,
            watchdog,
            stdout,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The committed input position last reported.
    fn committed(&self) -> i64 {
        self.lines()
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("committed ")?.trim().parse().ok())
            .unwrap_or(-1)
    }

    /// Is a transaction open (records sent, not yet committed) that started at `from` or later?
    fn open_from(&self, from: i64) -> bool {
        let lines = self.lines();
        let Some(last) = lines.last() else {
            return false;
        };
        last.strip_prefix("open ")
            .and_then(|r| r.split(' ').next()?.parse::<i64>().ok())
            .is_some_and(|c| c >= from)
    }

    /// Fails the test (with the program's stderr) if it exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "Eos.java exited early ({status}); stdout tail: {:?}\nstderr:\n{}",
                self.lines().iter().rev().take(5).collect::<Vec<_>>(),
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
    }

    /// Waits until the reported committed position reaches `at_least`.
    fn wait_committed(&mut self, at_least: i64, what: &str) -> i64 {
        wait_until(what, T, || {
            self.check_alive();
            let c = self.committed();
            (c >= at_least).then_some(c)
        })
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for a successful exit; returns the final JSON line.
    fn wait_done(&mut self) -> Value {
        let status = wait_until("Eos.java to finish", 2 * T, || {
            self.child.try_wait().ok().flatten()
        });
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "Eos.java failed ({status}):\n{stderr}");
        clients::last_json(&self.lines().join("\n")).unwrap()
    }
}

impl Drop for EosProcess {
    fn drop(&mut self) {
        self.kill9();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Lets the copier go on until the committed input position reaches `limit` (written atomically).
fn set_gate(gate: &Path, limit: i64) {
    let tmp = gate.with_extension("tmp");
    std::fs::write(&tmp, limit.to_string()).unwrap();
    std::fs::rename(&tmp, gate).unwrap();
}

/// Waits until every partition of `topics` has all 3 replicas in its ISR (ZooKeeper state), so the
/// next kill leaves `min.insync.replicas=2` satisfied everywhere.
fn wait_full_isr(cluster: &Cluster, topics: &[&str]) {
    for topic in topics {
        let parts = wait_until(&format!("partitions of {topic}"), T, || {
            cluster
                .zk()
                .children(&format!("/brokers/topics/{topic}/partitions"))
                .ok()
                .flatten()
        });
        for p in parts {
            wait_until(&format!("full ISR of {topic}-{p}"), T, || {
                let s = cluster
                    .zk()
                    .json(&format!("/brokers/topics/{topic}/partitions/{p}/state"))
                    .ok()?;
                (s["isr"].as_array()?.len() == 3).then_some(())
            });
        }
    }
}

/// Waits until the copier has a transaction open past `at` (records sent, commit pending).
fn wait_open(eos: &mut EosProcess, at: i64) {
    wait_until("an open transaction", T, || {
        eos.check_alive();
        eos.open_from(at).then_some(())
    });
}

fn leader(cluster: &Cluster, topic: &str, p: i32) -> i32 {
    crate::cluster::state(cluster, topic, p).unwrap()["leader"]
        .as_i64()
        .unwrap() as i32
}

/// Writes `N` records `in-<i>` (key `k<i>`) to the input topic, `i % 2` being the partition.
fn fill_input(bootstrap: &str) {
    let producer: BaseProducer = client_config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for i in 0..N {
        let (k, v) = (format!("k{i}"), format!("in-{i}"));
        let mut rec = BaseRecord::to(INPUT)
            .partition((i % 2) as i32)
            .key(&k)
            .payload(&v);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(50));
                    rec = r;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(T).unwrap();
}

#[test]
fn txn_eos_consume_transform_produce_survives_kills() {
    let mut cluster = Cluster::builder("txneos")
        .brokers(3)
        .prop("min.insync.replicas", 2)
        .prop("transaction.state.log.min.isr", 2)
        .start();
    cluster.wait_registered(T);
    let b = cluster.bootstrap();
    create_topic(&b, INPUT, 2, 3, &[]);
    create_topic(&b, OUTPUT, 3, 3, &[]);
    fill_input(&b);
    let dir = cluster.brokers[0].dir.parent().unwrap().to_path_buf();
    let gate = dir.join("eos-gate");
    let internal = [INPUT, OUTPUT, "__transaction_state", "__consumer_offsets"];

    set_gate(&gate, 300);
    let mut eos = EosProcess::start(&dir, 1, &b, &gate);
    let at = eos.wait_committed(300, "the first transactions");

    // 1. The transaction coordinator's broker dies while transactions run.
    let coord = find_coordinator(&cluster.brokers[0].addr(), TXN_ID);
    set_gate(&gate, at + STEP);
    wait_open(&mut eos, at);
    cluster.broker(coord).kill9();
    let at = eos.wait_committed(at + STEP, "progress after the coordinator's broker died");
    cluster.restart_killed(coord).unwrap();
    wait_full_isr(&cluster, &internal);

    // 2. The leader of an output partition dies (one that is not the coordinator, if any).
    let coord = find_coordinator(&cluster.brokers[0].addr(), TXN_ID);
    let leaders: Vec<i32> = (0..3).map(|p| leader(&cluster, OUTPUT, p)).collect();
    let victim = leaders
        .iter()
        .copied()
        .find(|l| *l != coord)
        .unwrap_or(leaders[0]);
    set_gate(&gate, at + STEP);
    wait_open(&mut eos, at);
    cluster.broker(victim).kill9();
    let at = eos.wait_committed(at + STEP, "progress after an output leader died");
    cluster.restart_killed(victim).unwrap();
    wait_full_isr(&cluster, &internal);

    // 3. The producer process itself dies with a transaction open; a new one with the same
    // transactional.id fences it, aborts what it left and finishes the input.
    set_gate(&gate, at + STEP);
    wait_open(&mut eos, at);
    eos.kill9();
    set_gate(&gate, N);
    let mut eos = EosProcess::start(&dir, 2, &b, &gate);
    let done = eos.wait_done();
    assert_eq!(done["committed"], N, "{done}");

    let args: Vec<String> = ["verify", b.as_str(), INPUT, OUTPUT, GROUP]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let v = clients::java("Eos", &args, Duration::from_secs(300)).unwrap();
    let mut values: Vec<String> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    values.sort();
    let mut expected: Vec<String> = (0..N).map(|i| format!("out:in-{i}")).collect();
    expected.sort();
    let dups = values.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dups, 0, "duplicates in the committed output");
    assert_eq!(values.len(), expected.len(), "records lost or duplicated");
    assert_eq!(values, expected);
    assert_eq!(v["input_end"], serde_json::json!({"0": N / 2, "1": N / 2}));
    assert_eq!(
        v["committed"], v["input_end"],
        "the group's offsets are the end of the input"
    );
    // The copier was killed after writing a transaction's records: they are in the log, aborted.
    assert!(
        v["uncommitted"].as_i64().unwrap() > N,
        "no aborted records in the output: {}",
        v["uncommitted"]
    );
    cluster.finish();
}
