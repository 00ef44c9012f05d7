#!/usr/bin/env python3
"""Samsa fault drill: a seeded nemesis against a real cluster, and a checker of Kafka's promises.

    sudo drill/drill.py --seed 7 --faults 100          # a full run
    sudo drill/drill.py --profile short --seed 1       # the ~3 minute profile CI runs

It builds hosts as network namespaces (drill/net.py), starts a three-server ZooKeeper ensemble
and the brokers (drill/procs.py), runs idempotent producers and a consumer group from a client
host, injects faults from a schedule drawn from the seed, heals, waits for the cluster to
converge, then checks (drill/check.py): no acknowledged record lost or duplicated, per-producer
order, committed offsets never backwards, clean elections only, identical replicas.
The run directory keeps every log; it is deleted after a passing run unless --keep.
Exit status 0 = every check passed; 1 = a violation (the table says which); 2 = setup failed.
"""

import argparse
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import check  # noqa: E402
import net  # noqa: E402
import procs  # noqa: E402

TOPIC = "drill"
GROUP = "drill-group"
# The transactional stage (drill/txn.py): TOPIC -> OUT_TOPIC, exactly once.
OUT_TOPIC = "drill-out"
TXN_GROUP = "drill-txn-group"
TXN_IDS = ["drill-txn-0", "drill-txn-1"]
ZK_CHROOT = "/drill"
SESSION_MS = 6000

PROFILES = {
    # faults, partitions, producers, rate per producer, fault duration range (s), settle bound (s)
    "short": dict(faults=24, partitions=4, producers=2, rate=100, dur=(1.0, 3.0), settle=45),
    "full": dict(faults=100, partitions=6, producers=3, rate=150, dur=(2.0, 8.0), settle=90),
}

# Fault kinds and their weights in the schedule.
KINDS = {
    "kill9": 3, "sigstop-short": 2, "sigstop-long": 2, "sigterm-restart": 3,
    "zk-session-expiry": 2, "zk-cut-short": 1, "zk-server-kill": 1, "zk-leader-kill": 1,
    "zk-minority-partition": 1, "partition-broker": 2, "asymmetric-drop": 1, "packet-loss": 1,
    "slow-link": 1, "disk-full": 1, "kill-leader-with-paused-follower": 1, "rolling-restart": 1,
}
ROLES = ["leader", "follower", "controller", "coordinator"]


def log(msg):
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def java_hash(s):
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (h * 31 + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(key, n):
    h = java_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % n


def schedule(seed, n, dur):
    rng = random.Random(seed)
    kinds = [k for k, w in KINDS.items() for _ in range(w)]
    out = []
    for i in range(n):
        kind = rng.choice(kinds)
        out.append({
            "i": i, "kind": kind, "role": rng.choice(ROLES),
            "duration": round(rng.uniform(*dur), 2), "pick": rng.random(),
        })
    return out


class Drill:
    def __init__(self, args, prof):
        self.args = args
        self.prof = prof
        self.run_dir = os.path.abspath(args.run_dir)
        self.brokers = {}
        self.zks = {}
        self.producers = {}
        self.consumers = []
        self.transitions = defaultdict(list)
        self.commit_samples = []
        self.txn_commit_samples = []
        self.txn_stages = []  # (process, log path)
        self.state = {}  # partition -> (leader, isr) latest
        self.stop_monitor = threading.Event()
        self.faults_done = []
        self.violations = []
        self.broker_props = {}  # extra server.properties for every broker

    # ------------------------------------------------------------------ set-up
    def setup_inner(self):
        """`setup` without making namespaces (the outer process made them)."""
        nb = self.args.brokers
        ips = {f"zk{i}": f"{net.SUBNET}.{10 + i}" for i in (1, 2, 3)}
        ips.update({f"b{i}": f"{net.SUBNET}.{20 + i}" for i in range(1, nb + 1)})
        self.ips = ips
        ensemble = {i: ips[f"zk{i}"] for i in (1, 2, 3)}
        for i in (1, 2, 3):
            self.zks[i] = procs.ZkServer(i, f"zk{i}", self.run_dir, ensemble)
            self.zks[i].start()
        self.zk_connect = ",".join(f"{ip}:2181" for ip in ensemble.values())
        self.wait(lambda: sum(z.mode() in ("leader", "follower") for z in self.zks.values()) == 3,
                  "ZooKeeper ensemble serving", 120)
        from kazoo.client import KazooClient
        boot = KazooClient(hosts=self.zk_connect, timeout=10)
        boot.start(timeout=60)
        boot.ensure_path(ZK_CHROOT)
        boot.stop()
        for i in range(1, nb + 1):
            b = procs.Broker(i, f"b{i}", ips[f"b{i}"], self.run_dir, self.args.bin,
                             self.zk_connect + ZK_CHROOT, self.broker_props)
            self.brokers[i] = b
            b.start()
        self.bootstrap = ",".join(f"{b.ip}:9092" for b in self.brokers.values())
        self.zk = KazooClient(hosts=self.zk_connect + ZK_CHROOT, timeout=10)
        self.zk.start(timeout=60)
        self.wait(lambda: len(self.registered()) == nb, "all brokers registered", 120)
        self.create_topic()

    def registered(self):
        try:
            return [int(x) for x in self.zk.get_children("/brokers/ids")]
        except Exception:
            return []

    def create_topic(self):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        config = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
        topics = [TOPIC] + ([OUT_TOPIC] if self.args.txn else [])
        fs = admin.create_topics([NewTopic(t, self.prof["partitions"], 3, config=config)
                                  for t in topics])
        for f in fs.values():
            f.result(60)
        self.wait(lambda: self.all_converged(), "topic leaders and full ISRs", 120)

    # ------------------------------------------------------------------ state
    def wait(self, cond, what, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return True
            except Exception:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    def partition_state(self, topic, p):
        data, stat = self.zk.get(f"/brokers/topics/{topic}/partitions/{p}/state")
        s = json.loads(data)
        return stat.version, s["leader"], s["leader_epoch"], s["isr"]

    def all_converged(self, topics=None):
        """Every partition of the drill topics (and of the internal topics once they exist) has
        a leader and all its replicas in the ISR, and every broker is registered."""
        if len(self.registered()) != len(self.brokers):
            return False
        mine = [TOPIC] + ([OUT_TOPIC] if self.args.txn else [])
        for topic in topics or mine + ["__consumer_offsets", "__transaction_state"]:
            if not self.zk.exists(f"/brokers/topics/{topic}"):
                if topic in mine:
                    return False
                continue
            assignment = json.loads(self.zk.get(f"/brokers/topics/{topic}")[0])["partitions"]
            for p, replicas in assignment.items():
                _v, leader, _e, isr = self.partition_state(topic, p)
                if leader < 0 or sorted(isr) != sorted(replicas):
                    return False
        return True

    def monitor(self):
        """Watches leader/ISR of the drill topic and samples committed offsets."""
        from confluent_kafka import Consumer, TopicPartition
        def watcher(p):
            def watch(data, stat):
                if data:
                    s = json.loads(data)
                    self.transitions[p].append((stat.version, s["leader"], s["leader_epoch"],
                                                tuple(s["isr"])))
                    self.state[p] = (s["leader"], s["isr"])
                return not self.stop_monitor.is_set()
            return watch

        for p in range(self.prof["partitions"]):
            self.zk.DataWatch(f"/brokers/topics/{TOPIC}/partitions/{p}/state", watcher(p))
        groups = [(GROUP, self.commit_samples)]
        if self.args.txn:
            groups.append((TXN_GROUP, self.txn_commit_samples))
        # read_committed: the offset fetch asks for stable offsets (KIP-447).
        cs = [(Consumer({"bootstrap.servers": self.bootstrap, "group.id": g,
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "log_level": 0}), samples) for g, samples in groups]
        tps = [TopicPartition(TOPIC, p) for p in range(self.prof["partitions"])]
        while not self.stop_monitor.wait(1.0):
            for c, samples in cs:
                try:
                    for tp in c.committed(tps, timeout=5):
                        if tp.error is None:
                            samples.append((int(time.time() * 1000), tp.partition, tp.offset))
                except Exception:
                    pass
        for c, _s in cs:
            c.close()

    # ------------------------------------------------------------------ load
    def start_load(self):
        py = sys.executable
        for i in range(self.prof["producers"]):
            pid = f"p{i}"
            out = os.path.join(self.run_dir, f"acks-{pid}.log")
            self.producers[pid] = (subprocess.Popen(
                [py, os.path.join(HERE, "producer.py"), self.bootstrap, TOPIC,
                 str(self.prof["partitions"]), pid, out, str(self.prof["rate"])],
                stdout=open(os.path.join(self.run_dir, f"{pid}.out"), "w"),
                stderr=subprocess.STDOUT), out)
        for i in range(2):
            out = os.path.join(self.run_dir, f"commits-c{i}.log")
            self.consumers.append(subprocess.Popen(
                [py, os.path.join(HERE, "consumer.py"), self.bootstrap, TOPIC, GROUP, out],
                stdout=open(os.path.join(self.run_dir, f"c{i}.out"), "w"),
                stderr=subprocess.STDOUT))
        for txn_id in TXN_IDS if self.args.txn else []:
            out = os.path.join(self.run_dir, f"txn-{txn_id}.log")
            self.txn_stages.append((subprocess.Popen(
                [py, os.path.join(HERE, "txn.py"), self.bootstrap, TOPIC, OUT_TOPIC, TXN_GROUP,
                 txn_id, out],
                stdout=open(os.path.join(self.run_dir, f"{txn_id}.out"), "w"),
                stderr=subprocess.STDOUT), out))

    def stop_producers(self):
        for p, _out in self.producers.values():
            p.send_signal(signal.SIGTERM)
        for p, _out in self.producers.values():
            try:
                p.wait(120)
            except subprocess.TimeoutExpired:
                p.kill()

    def stop_consumers(self):
        procs_ = self.consumers + [p for p, _out in self.txn_stages]
        for c in procs_:
            c.send_signal(signal.SIGTERM)
        for c in procs_:
            try:
                c.wait(120)
            except subprocess.TimeoutExpired:
                c.kill()
                self.violations.append(f"a consumer or transactional stage (pid {c.pid}) did "
                                       "not stop within 120s of SIGTERM")
            if c.returncode not in (0, None, -9):
                self.violations.append(f"a consumer or transactional stage (pid {c.pid}) "
                                       f"exited with {c.returncode}")

    # ------------------------------------------------------------------ targets
    def controller(self):
        try:
            return json.loads(self.zk.get("/controller")[0])["brokerid"]
        except Exception:
            return None

    def target(self, role, pick):
        self.coordinator_hit = None
        live = [i for i, b in self.brokers.items() if b.running()]
        parts = sorted(self.state)
        if role == "controller":
            c = self.controller()
            if c in live:
                return c
        if role == "coordinator":
            # A group coordinator (the leader of the group's __consumer_offsets partition) or,
            # with the transactional stage, a transaction coordinator (the leader of the
            # transactional id's __transaction_state partition), chosen by `pick`.
            topic, key = "__consumer_offsets", GROUP
            if self.args.txn:
                if pick < 0.25:
                    key = TXN_GROUP
                elif pick >= 0.5:
                    topic, key = "__transaction_state", TXN_IDS[int(pick >= 0.75)]
            try:
                _v, leader, _e, _isr = self.partition_state(topic, partition_for(key, 5))
                if leader in live:
                    self.coordinator_hit = f"{topic} coordinator of {key}"
                    return leader
            except Exception:
                pass
        if parts:
            leader, isr = self.state[parts[int(pick * len(parts))]]
            if role == "leader" and leader in live:
                return leader
            followers = [b for b in isr if b != leader and b in live]
            if role == "follower" and followers:
                return followers[int(pick * len(followers))]
        return live[int(pick * len(live))] if live else 1

    # ------------------------------------------------------------------ faults
    def restart(self, b):
        """Starts a broker that is down. After a crash its old session's `/brokers/ids/<id>`
        lingers until ZooKeeper expires it, and Kafka (like Samsa) refuses to start while another
        session owns that znode, so wait for it to go first, as a supervisor with back-off does."""
        if b.running():
            return
        b.fsize = None
        try:
            self.wait(lambda: not self.zk.exists(f"/brokers/ids/{b.id}"),
                      f"broker {b.id}'s old registration to expire", SESSION_MS / 1000 + 30)
        except TimeoutError as e:
            self.violations.append(str(e))
        b.start()
        try:
            self.wait(lambda: self.zk.exists(f"/brokers/ids/{b.id}") or not b.running(),
                      f"broker {b.id} registered", 120)
        except TimeoutError as e:
            self.violations.append(str(e))
        if not b.running():
            tail = b.log_text().strip().splitlines()[-3:]
            self.violations.append(f"broker {b.id} exited at start-up: {' | '.join(tail)}")

    def inject(self, f):
        kind, d = f["kind"], f["duration"]
        bid = self.target(f["role"], f["pick"])
        b = self.brokers[bid]
        other_brokers = [x.ip for i, x in self.brokers.items() if i != bid]
        zk_ips = [z.ip for z in self.zks.values()]
        f["target"] = f"broker {bid}"
        if self.coordinator_hit:
            f["target"] += f" ({self.coordinator_hit})"
        if kind == "kill9":
            b.kill9(); time.sleep(d); self.restart(b)
        elif kind == "sigstop-short":
            b.stop(); time.sleep(min(d, SESSION_MS / 2000)); b.cont()
        elif kind == "sigstop-long":
            b.stop(); time.sleep(SESSION_MS / 1000 + 2 + d); b.cont()
        elif kind == "sigterm-restart":
            b.terminate(); self.restart(b)
        elif kind == "zk-session-expiry":
            net.drop_between(b.host, zk_ips); time.sleep(SESSION_MS / 1000 + 2 + d)
            net.heal(b.host)
        elif kind == "zk-cut-short":
            net.drop_between(b.host, zk_ips); time.sleep(min(d, SESSION_MS / 3000))
            net.heal(b.host)
        elif kind in ("zk-server-kill", "zk-leader-kill"):
            want = "leader" if kind == "zk-leader-kill" else "follower"
            z = next((z for z in self.zks.values() if z.mode() == want),
                     self.zks[1 + int(f["pick"] * 3)])
            f["target"] = f"zk{z.myid} ({want})"
            z.kill9(); time.sleep(d); z.start()
            self.wait(lambda: z.mode() in ("leader", "follower"), f"zk{z.myid} back", 120)
        elif kind == "zk-minority-partition":
            z = self.zks[1 + int(f["pick"] * 3)]
            f["target"] = f"zk{z.myid}"
            peers = [x.ip for x in self.zks.values() if x is not z] + [x.ip for x in
                                                                          self.brokers.values()]
            net.drop_between(z.host, peers); time.sleep(d + 2); net.heal(z.host)
        elif kind == "partition-broker":
            net.drop_between(b.host, other_brokers); time.sleep(d + 2); net.heal(b.host)
        elif kind == "asymmetric-drop":
            net.drop_between(b.host, other_brokers, "out"); time.sleep(d + 2); net.heal(b.host)
        elif kind == "packet-loss":
            net.random_loss(b.host, 20); time.sleep(d + 2); net.heal(b.host)
        elif kind == "slow-link":
            net.slow_link(b.host); time.sleep(d + 2); net.heal(b.host)
        elif kind == "disk-full":
            # Writes past the current largest file fail: the log dir goes offline and a broker
            # with a single dir halts, as Kafka does. Then it comes back with room again.
            limit = b.largest_log_file() + 64 * 1024
            b.set_file_size_limit(limit)
            deadline = time.monotonic() + d + 20
            while b.running() and time.monotonic() < deadline:
                time.sleep(0.2)
            f["halted"] = not b.running()
            b.kill9(); self.restart(b)
        elif kind == "kill-leader-with-paused-follower":
            follower = self.target("follower", f["pick"])
            fb = self.brokers[follower]
            if follower == bid:
                follower = next(i for i in self.brokers if i != bid)
                fb = self.brokers[follower]
            bid = self.target("leader", f["pick"])
            b = self.brokers[bid]
            if bid == follower:
                bid = next(i for i in self.brokers if i != follower)
                b = self.brokers[bid]
            f["target"] = f"leader {bid}, paused follower {follower}"
            fb.stop(); time.sleep(0.5); b.kill9(); time.sleep(d)
            fb.cont(); self.restart(b)
        elif kind == "rolling-restart":
            f["target"] = "every broker"
            for i, x in self.brokers.items():
                x.terminate(); self.restart(x)
                self.wait(self.all_converged, f"ISR full after restarting broker {i}",
                          self.prof["settle"] * 2)
        else:
            raise ValueError(kind)

    def run_faults(self, sched):
        times = []
        for f in sched:
            start = int(time.time() * 1000)
            log(f"fault {f['i'] + 1}/{len(sched)}: {f['kind']} ({f['role']}, {f['duration']}s)")
            self.inject(f)
            end = int(time.time() * 1000)
            t0 = time.monotonic()
            try:
                self.wait(self.all_converged, "convergence after the fault", self.prof["settle"])
                f["converge_s"] = round(time.monotonic() - t0, 2)
            except TimeoutError:
                f["converge_s"] = None
                log(f"  not converged within {self.prof['settle']}s; going on")
            f["window"] = (start, end)
            self.faults_done.append(f)
            times.append((start, end))
            # Every fault ends with its broker running again; one that is not exited by itself
            # (a crash or a fatal error): that is a finding, and going on without it would only
            # pile up "not converged" faults, so stop here and report.
            dead = [b for b in self.brokers.values() if not b.running()]
            if dead:
                for b in dead:
                    tail = b.log_text().strip().splitlines()[-3:]
                    self.violations.append(f"broker {b.id} exited by itself after fault "
                                           f"{f['i'] + 1} ({f['kind']}): {' | '.join(tail)}")
                log(f"  broker(s) {[b.id for b in dead]} exited by themselves; stopping the faults")
                break
        return times

    # ------------------------------------------------------------------ checks
    def read_topic(self, topic=TOPIC):
        """{partition: {offset: (key, value)}}, read with read_committed. The end of a partition
        is its partition-EOF event (at the high watermark, the last stable offset once no
        transaction is open): a transactional topic ends with a marker no consumer sees."""
        from confluent_kafka import Consumer, KafkaError, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "drill-checker",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "isolation.level": "read_committed", "enable.partition.eof": True,
                      "fetch.max.bytes": 8 << 20, "log_level": 0})
        stored = {}
        for p in range(self.prof["partitions"]):
            lo = hi = None
            deadline = time.monotonic() + 60
            while hi is None:
                try:
                    lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                except Exception:
                    # A leader that moved: the client refreshes its metadata on the next call.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            recs = {}
            c.assign([TopicPartition(topic, p, lo)])
            deadline = time.monotonic() + 120
            pos = lo
            eof = lo == hi
            while not eof and time.monotonic() < deadline:
                for m in c.consume(1000, 1.0):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= hi:
                            eof = True
                        continue
                    recs[m.offset()] = (m.key().decode() if m.key() else None,
                                        m.value().decode() if m.value() else None)
                    pos = max(pos, m.offset() + 1)
            if not eof:
                self.violations.append(f"{topic} partition {p}: read stopped at {pos} of {hi}")
            stored[p] = recs
        c.close()
        return stored

    def txn_committed(self):
        """{partition: the transactional group's committed offset}, stable offsets only."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": TXN_GROUP,
                      "enable.auto.commit": False, "isolation.level": "read_committed",
                      "log_level": 0})
        try:
            tps = [TopicPartition(TOPIC, p) for p in range(self.prof["partitions"])]
            deadline = time.monotonic() + 60
            while True:
                try:
                    got = c.committed(tps, timeout=10)
                    if all(tp.error is None for tp in got):
                        return {tp.partition: max(tp.offset, 0) for tp in got}
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("the transactional group's committed offsets")
                time.sleep(0.5)
        finally:
            c.close()

    def wait_txn_caught_up(self):
        """After the producers stop: seconds until the transactional stage has committed the
        whole input (bounded; a stage that cannot catch up is a violation)."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "drill-checker",
                      "log_level": 0})
        ends = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=30)[1]
                for p in range(self.prof["partitions"])}
        c.close()
        t0 = time.monotonic()
        bound = self.prof["settle"] * 2
        try:
            self.wait(lambda: all(self.txn_committed().get(p, 0) >= e for p, e in ends.items()),
                      "the transactional stage to commit the whole input", bound)
            return round(time.monotonic() - t0, 2)
        except TimeoutError:
            self.violations.append(f"the transactional stage had not committed the whole input "
                                   f"{bound}s after the producers stopped")
            return None

    def finish(self, sched):
        log("faults done; healing everything and waiting for convergence")
        for b in self.brokers.values():
            net.heal(b.host)
            if b.stopped:
                b.cont()
            self.restart(b)
        for z in self.zks.values():
            net.heal(z.host)
            if not z.running():
                z.start()
        t0 = time.monotonic()
        converge = None
        try:
            self.wait(self.all_converged, "final convergence", self.prof["settle"] * 2)
            converge = round(time.monotonic() - t0, 2)
        except TimeoutError:
            self.violations.append("cluster did not converge (leader and full ISR everywhere) "
                                   f"within {self.prof['settle'] * 2}s after the faults")
        log("stopping the load")
        self.stop_producers()
        caught_up = self.wait_txn_caught_up() if self.args.txn else None
        self.stop_consumers()
        self.stop_monitor.set()
        acks = check.read_acks({pid: out for pid, (_p, out) in self.producers.items()})
        stored = self.read_topic()
        eos = {}
        if self.args.txn:
            txns, recreated = check.read_txn_logs([out for _p, out in self.txn_stages])
            committed = self.txn_committed()
            eos = check.check_eos(stored, self.read_topic(OUT_TOPIC), txns, committed,
                                  self.violations)
            check.check_commits(self.txn_commit_samples, self.violations)
            eos.update(txn_recreated=recreated, txn_catch_up=caught_up)
        for pid, a in acks.items():
            for fatal in a["fatal"]:
                self.violations.append(f"producer {pid} fatal error: {fatal}")
        check.check_commits(self.commit_samples, self.violations)
        verified = check.check_transitions(self.transitions, self.violations)
        max_acked = {}
        for a in acks.values():
            for _s, part, off, _ms in a["acked"]:
                max_acked[part] = max(max_acked.get(part, 0), off + 1)
        log("stopping the brokers cleanly for the replica comparison")
        for b in self.brokers.values():
            code = b.terminate()
            if code not in (0, None):
                self.violations.append(f"broker {b.id} exited with {code} on SIGTERM")
        check.check_replicas({i: b.log_dir for i, b in self.brokers.items()}, TOPIC,
                             self.prof["partitions"], max_acked, self.violations)
        # After the clean stop: a duplicate's producer epochs come from the replicas on disk.
        resent = []
        producer_of = check.producer_lookup(
            lambda p: [os.path.join(b.log_dir, f"{TOPIC}-{p}") for b in self.brokers.values()])
        acked, lost, dup = check.check_records(acks, stored, self.violations, producer_of, resent)
        for r in resent[:20]:
            log(f"re-sent by the client after an epoch bump (librdkafka#4953): {r}")
        if self.args.txn:
            check.check_replicas({i: b.log_dir for i, b in self.brokers.items()}, OUT_TOPIC,
                                 self.prof["partitions"], {}, self.violations)
        for b in self.brokers.values():
            for line in b.log_text().splitlines():
                if "panicked" in line:
                    self.violations.append(f"broker {b.id} panicked: {line.strip()[:200]}")
        gaps = check.longest_gaps(acks)
        stalls = defaultdict(list)
        for f in self.faults_done:
            stalls[f["kind"]].append(check.stall_in_window(gaps, *f["window"]))
        failed = sum(a["failed"] for a in acks.values())
        no_offset = sum(1 for a in acks.values() for x in a["acked"] if x[2] < 0)
        return dict(acked=acked, lost=lost, duplicated=dup, failed=failed, no_offset=no_offset,
                    eos=eos, resent=len(resent),
                    converge=converge, verified_elections=verified, stalls=stalls,
                    longest_unavailability={p: max((b - a for a, b in zip(t, t[1:])), default=0)
                                            for p, t in gaps.items()})

    def report(self, result):
        kinds = Counter(f["kind"] for f in self.faults_done)
        print()
        print(f"seed {self.args.seed}  profile {self.args.profile}  faults {len(self.faults_done)}"
              f"  brokers {len(self.brokers)}  run dir {self.run_dir}")
        print(f"{'fault kind':34} {'count':>5} {'median stall ms':>16} {'max stall ms':>13}")
        for k, n in sorted(kinds.items()):
            s = sorted(result["stalls"][k])
            print(f"{k:34} {n:>5} {s[len(s) // 2] if s else 0:>16} {max(s) if s else 0:>13}")
        e = result["eos"]
        if e:
            print(f"transactional stage: transactions committed {e['txn_committed']}, aborted "
                  f"{e['txn_aborted']}, outcome unknown {e['txn_unknown']}, producers recreated "
                  f"{e['txn_recreated']}; output records {e['eos_output']}, duplicated "
                  f"{e['eos_duplicated']}, missing {e['eos_missing']}, exactly-once violations "
                  f"{e['eos_violations']}; caught up {e['txn_catch_up']} s after the load")
        print(f"records acknowledged {result['acked']}, lost {result['lost']}, duplicated "
              f"{result['duplicated']}, re-sent by the client after an epoch bump "
              f"{result['resent']}, failed (not acknowledged) {result['failed']}, "
              f"acknowledged without an offset (found by value) {result['no_offset']}")
        print("longest unavailability per partition (ms): " + ", ".join(
            f"{p}: {v}" for p, v in sorted(result["longest_unavailability"].items())))
        print(f"time to converge after the last fault: {result['converge']} s; "
              f"clean elections verified: {result['verified_elections']}")
        if self.violations:
            print(f"VIOLATIONS ({len(self.violations)}):")
            for v in self.violations[:50]:
                print(f"  - {v}")
        else:
            print("no violations")
        with open(os.path.join(self.run_dir, "result.json"), "w") as f:
            json.dump({"seed": self.args.seed, "faults": self.faults_done, "violations":
                       self.violations, **{k: v for k, v in result.items() if k != "stalls"},
                       "stalls": dict(result["stalls"])}, f, indent=1, default=str)

    def cleanup(self):
        self.stop_monitor.set()
        for p, _o in self.producers.values():
            if p.poll() is None:
                p.kill()
        for c in self.consumers + [p for p, _o in self.txn_stages]:
            if c.poll() is None:
                c.kill()
        for x in list(self.brokers.values()) + list(self.zks.values()):
            if x.running():
                x.kill9()
        try:
            self.zk.stop()
        except Exception:
            pass


def stop_on_sigterm():
    """The first SIGTERM (e.g. from `timeout`) unwinds like an error, so `finally` blocks clean
    up; later ones are ignored, so that they cannot cut the clean-up short."""
    def handler(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(143)
    signal.signal(signal.SIGTERM, handler)


def run_inner(argv):
    """Runs the drill inside the client namespace; on SIGTERM stops it, then removes the hosts."""
    stop_on_sigterm()
    child = subprocess.Popen(argv)
    try:
        return child.wait()
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # ignored if it is already cleaning up
            try:
                child.wait(180)
            except subprocess.TimeoutExpired:
                child.kill()
        net.teardown()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full")
    ap.add_argument("--faults", type=int, help="number of faults (default: the profile's)")
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "debug", "samsa-broker"))
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the run dir after a pass")
    ap.add_argument("--no-txn", dest="txn", action="store_false",
                    help="without the transactional consume-transform-produce stage")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    prof = dict(PROFILES[args.profile])
    if args.faults:
        prof["faults"] = args.faults
    args.bin = os.path.abspath(args.bin)
    if args.run_dir is None:
        args.run_dir = os.path.join(HERE, "..", "target", "drill", f"seed-{args.seed}")
    if os.geteuid() != 0:
        sys.exit("drill: needs root (network namespaces)")
    if not os.path.exists(args.bin):
        sys.exit(f"drill: no broker binary at {args.bin} (cargo build -p samsa-broker)")
    if not args.inner:
        # Build the hosts, then run the rest from the client host's namespace.
        shutil.rmtree(args.run_dir, ignore_errors=True)
        os.makedirs(args.run_dir)
        argv = [sys.executable, os.path.abspath(__file__), "--inner"] + sys.argv[1:]
        hosts = {f"zk{i}": 10 + i for i in (1, 2, 3)}
        hosts.update({f"b{i}": 20 + i for i in range(1, args.brokers + 1)})
        hosts["client"] = 100
        net.setup(hosts)
        code = run_inner(["ip", "netns", "exec", net.ns("client")] + argv)
        if code == 0 and not args.keep:
            shutil.rmtree(args.run_dir, ignore_errors=True)
        sys.exit(code)

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    stop_on_sigterm()
    d = Drill(args, prof)
    # The namespaces exist already (made by the outer process); record their addresses.
    sched = schedule(args.seed, prof["faults"], prof["dur"])
    code = 0
    try:
        try:
            d.setup_inner()
        except Exception as e:
            log(f"setup failed: {e}")
            return 2
        threading.Thread(target=d.monitor, daemon=True).start()
        d.start_load()
        time.sleep(3)  # records flowing before the first fault (not a wait for a condition)
        d.run_faults(sched)
        result = d.finish(sched)
        d.report(result)
        code = 1 if d.violations else 0
    finally:
        d.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
