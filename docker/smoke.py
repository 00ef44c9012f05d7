#!/usr/bin/env python3
"""Smoke test of docker/compose.yaml: ZooKeeper + 3 Samsa brokers in containers, driven from the host.

Run it through docker/smoke.sh (which builds the images first). Every wait has a deadline; any failed
check exits non-zero, and the compose project is torn down (with its volumes) either way unless
SMOKE_KEEP=1. Steps:
  1. `compose up`; brokers 1, 2, 3 registered in ZooKeeper with an INTERNAL (brokerN:9093) and an
     EXTERNAL (localhost:N9092) endpoint
  2. an RF=3 topic (3 partitions, min.insync.replicas=2) created from the host; full ISRs
  3. acks=all produce from the host; a kcat container inside the compose network sees the brokers at
     their INTERNAL addresses, produces too, and consumes what the host wrote
  4. `docker kill` of a partition leader under continuous idempotent acks=all produce and a live
     consumer-group member: leadership moves, produce keeps being acknowledged and the member keeps
     consuming; after `docker start` the broker is back in every ISR
  5. `docker network disconnect` of a leader (a real partition: cut from ZooKeeper, the other
     brokers and the host) under the same load: its ZooKeeper session expires, leadership and ISR
     move off it, produce and consume go on; after `docker network connect` it re-registers, rejoins
     every ISR and is reachable from the host again
  6. every acknowledged record is read back from the host at its offset with its value and was seen
     by the live member; the in-network consumer sees the same count; no broker panicked
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient

HERE = os.path.dirname(os.path.abspath(__file__))
COMPOSE_FILE = os.path.join(HERE, "compose.yaml")
PROJECT = os.environ.get("SMOKE_PROJECT", "samsa-smoke")
KCAT_IMAGE = os.environ.get("SAMSA_KCAT_IMAGE", "samsa-kcat:dev")
BROKERS = {1: 19092, 2: 29092, 3: 39092}
BOOTSTRAP = ",".join(f"localhost:{p}" for p in BROKERS.values())
TOPIC = "smoke"
PARTITIONS = 3
CHROOT = "/samsa"
START = time.monotonic()


def log(msg):
    print(f"[smoke {time.monotonic() - START:6.1f}s] {msg}", flush=True)


class SmokeFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise SmokeFailure(msg)


def run(cmd, check_rc=True, timeout=300, input=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check_rc and p.returncode != 0:
        raise SmokeFailure(f"{' '.join(cmd)} exited {p.returncode}: {p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def compose_cmd():
    """`docker compose` (v2 plugin) when present, else the standalone `docker-compose`."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


COMPOSE = compose_cmd() + ["-f", COMPOSE_FILE, "-p", PROJECT]


def compose(*args, **kw):
    return run(COMPOSE + list(args), **kw)


def wait_until(what, fn, timeout, interval=0.5):
    """Polls fn until it returns a truthy value; fails with its last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except SmokeFailure:
            raise
        except Exception as e:  # a poll may fail while the cluster is in flux; retry until the deadline
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            raise SmokeFailure(f"timed out after {timeout}s waiting for {what} (last: {last})")
        time.sleep(interval)


def container(service):
    cid = compose("ps", "-q", service).stdout.strip()
    check(cid, f"no container for {service}")
    return cid


def network_of(cid):
    nets = json.loads(run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid]).stdout)
    check(len(nets) == 1, f"expected one network, got {list(nets)}")
    return next(iter(nets))


class Zk:
    """ZooKeeper through its port published on host loopback."""

    def __init__(self):
        out = compose("port", "zookeeper", "2181").stdout.strip()  # "127.0.0.1:NNNNN"
        self.hosts = out.replace("0.0.0.0", "127.0.0.1")
        self.zk = KazooClient(hosts=self.hosts, timeout=10)
        self.zk.start(timeout=30)

    def ids(self):
        path = f"{CHROOT}/brokers/ids"
        return sorted(int(i) for i in self.zk.get_children(path)) if self.zk.exists(path) else []

    def broker(self, bid):
        return json.loads(self.zk.get(f"{CHROOT}/brokers/ids/{bid}")[0])

    def state(self, p):
        return json.loads(self.zk.get(f"{CHROOT}/brokers/topics/{TOPIC}/partitions/{p}/state")[0])

    def states(self):
        return {p: self.state(p) for p in range(PARTITIONS)}

    def controller(self):
        return json.loads(self.zk.get(f"{CHROOT}/controller")[0])["brokerid"]

    def close(self):
        self.zk.stop()
        self.zk.close()


def host_metadata():
    """Partition → (leader, isr) as a host client sees it."""
    md = AdminClient({"bootstrap.servers": BOOTSTRAP, "log.connection.close": False}).list_topics(TOPIC, timeout=10)
    t = md.topics[TOPIC]
    if t.error is not None:
        raise RuntimeError(str(t.error))
    return {p: (pm.leader, sorted(pm.isrs)) for p, pm in t.partitions.items()}


class LoadProducer:
    """Idempotent acks=all producer on a thread; remembers every acknowledged (partition, offset, value)."""

    def __init__(self, tag):
        self.tag = tag
        self.acked = []
        self.errors = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.producer = Producer({
            "bootstrap.servers": BOOTSTRAP,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "delivery.timeout.ms": 120000,
            "log.connection.close": False,
        })
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _cb(self, err, msg):
        with self.lock:
            if err is not None:
                self.errors.append(str(err))
            else:
                self.acked.append((msg.partition(), msg.offset(), msg.value().decode()))

    def _run(self):
        while not self.stop_flag.is_set():
            value = f"{self.tag}-{self.sent}"
            try:
                self.producer.produce(TOPIC, value=value.encode(), on_delivery=self._cb)
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.02)

    def start(self):
        self.thread.start()
        return self

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def wait_more_acks(self, n, timeout, what):
        base = self.acked_count()
        wait_until(f"{n} more acknowledged records {what}", lambda: self.acked_count() >= base + n, timeout)

    def finish(self):
        self.stop_flag.set()
        self.thread.join(30)
        remaining = self.producer.flush(150)
        check(remaining == 0, f"{self.tag}: {remaining} records still unacknowledged after flush")
        log(f"{self.tag}: sent {self.sent}, acknowledged {len(self.acked)}, failed {len(self.errors)}"
            + (f" (first error: {self.errors[0]})" if self.errors else ""))
        return self.acked


class LiveConsumer:
    """A consumer-group member (subscribe, auto commit) on a thread, reading the topic from the start."""

    def __init__(self):
        self.consumer = Consumer({
            "bootstrap.servers": BOOTSTRAP,
            "group.id": "smoke-live",
            "auto.offset.reset": "earliest",
            "log.connection.close": False,
        })
        self.seen = set()
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.fatal = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.consumer.subscribe([TOPIC])
        while not self.stop_flag.is_set():
            m = self.consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().fatal():
                    self.fatal = str(m.error())
                    return
                continue  # transient (a broker going away): librdkafka retries by itself
            with self.lock:
                self.seen.add(m.value().decode())

    def start(self):
        self.thread.start()
        return self

    def count(self):
        with self.lock:
            return len(self.seen)

    def wait_more(self, n, timeout, what):
        base = self.count()
        wait_until(f"{n} more records consumed by the group member {what}",
                   lambda: self.count() >= base + n or self.fatal, timeout)
        check(self.fatal is None, f"consumer: {self.fatal}")

    def missing(self, values):
        with self.lock:
            return [v for v in values if v not in self.seen]

    def finish(self):
        self.stop_flag.set()
        self.thread.join(30)
        self.consumer.close()


def produce_batch(tag, n):
    lp = LoadProducer(tag)
    for i in range(n):
        lp.producer.produce(TOPIC, value=f"{tag}-{i}".encode(), on_delivery=lp._cb)
        lp.producer.poll(0)
    lp.sent = n
    check(lp.producer.flush(60) == 0, f"{tag}: not all records acknowledged")
    check(not lp.errors and len(lp.acked) == n, f"{tag}: {len(lp.acked)}/{n} acknowledged, errors {lp.errors[:3]}")
    return lp.acked


def read_all():
    """Every record of the topic, as {(partition, offset): value}, read from the host."""
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"smoke-{time.time()}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        ends = {}
        for p in range(PARTITIONS):
            lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
            ends[p] = hi
        c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        got = {}
        done = {p for p, hi in ends.items() if hi == 0}
        deadline = time.monotonic() + 120
        while len(done) < PARTITIONS:
            check(time.monotonic() < deadline, f"reading back timed out; done partitions {done}, ends {ends}")
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= ends[m.partition()]:
                        done.add(m.partition())
                    continue
                raise SmokeFailure(f"consume error: {m.error()}")
            got[(m.partition(), m.offset())] = m.value().decode()
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
        return got, ends
    finally:
        c.close()


def kcat_in_network(net, *args, input=None):
    return run(["docker", "run", "--rm", "-i", "--network", net, KCAT_IMAGE, *args], input=input, timeout=120)


def full_isr(zk, expect=(1, 2, 3)):
    states = zk.states()
    return states if all(sorted(s["isr"]) == list(expect) for s in states.values()) else None


def panics_and_errors():
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    panics, errors = [], []
    for b in BROKERS:
        out = compose("logs", "--no-color", f"broker{b}", check_rc=False).stdout
        for line in ansi.sub("", out).splitlines():
            if "panicked at" in line:
                panics.append(line)
            elif " ERROR " in line:
                errors.append(line)
    return panics, errors


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def smoke():
    for port in BROKERS.values():
        check(port_free(port), f"127.0.0.1:{port} is in use; compose.yaml publishes it")
    compose("down", "-v", "--remove-orphans", check_rc=False)
    log("compose up")
    compose("up", "-d", "--no-build", timeout=300)
    zk = wait_until("ZooKeeper reachable from the host", Zk, 120, interval=2)
    try:
        # 1. Registration.
        wait_until("brokers 1, 2, 3 registered in ZooKeeper", lambda: zk.ids() == [1, 2, 3], 120)
        for b, port in BROKERS.items():
            eps = sorted(zk.broker(b)["endpoints"])
            check(eps == sorted([f"INTERNAL://broker{b}:9093", f"EXTERNAL://localhost:{port}"]),
                  f"broker {b} endpoints {eps}")
        log(f"3 brokers registered; controller {zk.controller()}")

        # 2. Topic.
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        fut = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])
        fut[TOPIC].result(60)
        wait_until("full ISRs in ZooKeeper", lambda: full_isr(zk), 60)
        wait_until("host metadata with leaders and full ISRs",
                   lambda: all(l >= 0 and isr == [1, 2, 3] for l, isr in host_metadata().values()), 60)
        log(f"topic {TOPIC}: {host_metadata()}")

        # 3. Host and in-network clients.
        acked = produce_batch("host", 300)
        net = network_of(container("broker1"))
        md = json.loads(kcat_in_network(net, "-b", "broker1:9093", "-L", "-J").stdout)
        names = sorted(b["name"] for b in md["brokers"])
        check(names == ["broker1:9093", "broker2:9093", "broker3:9093"], f"in-network metadata brokers {names}")
        in_net_values = [f"innet-{i}" for i in range(100)]
        kcat_in_network(net, "-b", "broker2:9093", "-P", "-t", TOPIC, "-X", "acks=all",
                        input="\n".join(in_net_values) + "\n")
        got, _ = read_all()
        check(set(in_net_values) <= set(got.values()), "host did not read back the in-network kcat's records")
        out = kcat_in_network(net, "-b", "broker3:9093", "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q").stdout
        seen = set(out.split())
        check({v for _, _, v in acked} <= seen, "in-network kcat did not read every host record")
        log(f"host produced 300 (acks=all); in-network kcat saw brokers {names}, produced 100, read {len(seen)}")

        # 4. Broker loss.
        live = LiveConsumer().start()
        live.wait_more(300, 60, "before the kill")
        victim = host_metadata()[0][0]
        vcid = container(f"broker{victim}")
        lp = LoadProducer("kill").start()
        lp.wait_more_acks(200, 60, "before the kill")
        log(f"docker kill broker{victim} (leader of partition 0) under load")
        run(["docker", "kill", vcid])
        wait_until(f"broker {victim} gone from ZooKeeper",
                   lambda: victim not in zk.ids(), 60)
        wait_until(f"leadership and ISR off broker {victim}",
                   lambda: all(s["leader"] not in (-1, victim) and victim not in s["isr"]
                               for s in zk.states().values()), 60)
        lp.wait_more_acks(300, 90, f"with broker {victim} down")
        live.wait_more(300, 90, f"with broker {victim} down")
        log(f"leaders now {[s['leader'] for s in zk.states().values()]}; produce and consume continue")
        run(["docker", "start", vcid])
        wait_until(f"broker {victim} back in ZooKeeper", lambda: victim in zk.ids(), 120)
        wait_until(f"broker {victim} back in every ISR", lambda: full_isr(zk), 180)
        lp.wait_more_acks(200, 60, "after the restart")
        acked += lp.finish()
        log(f"broker{victim} restarted and back in every ISR")

        # 5. Network partition.
        victim = host_metadata()[1][0]
        vservice = f"broker{victim}"
        vcid = container(vservice)
        led = [p for p, s in zk.states().items() if s["leader"] == victim]
        lp = LoadProducer("partition").start()
        lp.wait_more_acks(200, 60, "before the partition")
        log(f"docker network disconnect {vservice} (leads partitions {led}) under load")
        run(["docker", "network", "disconnect", net, vcid])
        t0 = time.monotonic()
        wait_until(f"broker {victim}'s ZooKeeper session to expire", lambda: victim not in zk.ids(), 90)
        wait_until(f"leadership and ISR off broker {victim}",
                   lambda: all(s["leader"] not in (-1, victim) and victim not in s["isr"]
                               for s in zk.states().values()), 60)
        wait_until(f"host metadata with leaders off broker {victim}",
                   lambda: all(l not in (-1, victim) for l, _ in host_metadata().values()), 60)
        log(f"partitioned broker fenced after {time.monotonic() - t0:.1f}s; "
            f"leaders now {[s['leader'] for s in zk.states().values()]}")
        lp.wait_more_acks(300, 90, f"with broker {victim} partitioned")
        live.wait_more(300, 90, f"with broker {victim} partitioned")
        # The service name is a network alias; reconnecting must restore it for the others to resolve it.
        run(["docker", "network", "connect", "--alias", vservice, net, vcid])
        wait_until(f"broker {victim} re-registered in ZooKeeper", lambda: victim in zk.ids(), 120)
        wait_until(f"broker {victim} back in every ISR", lambda: full_isr(zk), 180)
        # Docker restores the published port with the endpoint: host clients reach it again.
        wait_until(f"host metadata from broker {victim} alone (localhost:{BROKERS[victim]})",
                   lambda: AdminClient({"bootstrap.servers": f"localhost:{BROKERS[victim]}"})
                   .list_topics(TOPIC, timeout=10).orig_broker_id == victim, 60)
        lp.wait_more_acks(200, 60, "after the partition healed")
        acked += lp.finish()
        log(f"{vservice} reconnected, re-registered and back in every ISR")

        # 6. No acknowledged record lost.
        wait_until("the group member to have consumed every acknowledged record",
                   lambda: not live.missing(v for _, _, v in acked), 120)
        live.finish()
        got, ends = read_all()
        lost = [(p, o, v) for p, o, v in acked if got.get((p, o)) != v]
        check(not lost, f"{len(lost)} acknowledged records lost or changed, e.g. {lost[:5]}")
        values = list(got.values())
        check(len(values) == len(set(values)), "duplicate values in the log")
        out = kcat_in_network(net, "-b", "broker1:9093", "-C", "-t", TOPIC, "-o", "beginning", "-e", "-q").stdout
        check(len(out.split()) == len(got), f"in-network kcat read {len(out.split())}, host read {len(got)}")
        log(f"all {len(acked)} acknowledged records read back (log end offsets {ends}) and seen by the "
            f"live group member; in-network kcat read the same {len(got)}")
        panics, errors = panics_and_errors()
        check(not panics, f"broker panics: {panics[:3]}")
        log(f"no broker panicked; {len(errors)} ERROR lines in broker logs"
            + "".join(f"\n    {e}" for e in errors[:10]))
    finally:
        zk.close()


def main():
    ok = False
    try:
        smoke()
        ok = True
    except SmokeFailure as e:
        log(f"FAIL: {e}")
    except Exception as e:
        log(f"FAIL: {type(e).__name__}: {e}")
    finally:
        if not ok:
            for s in ["zookeeper", "broker1", "broker2", "broker3"]:
                out = compose("logs", "--no-color", "--tail", "30", s, check_rc=False).stdout
                print(f"--- last log lines of {s} ---\n{out}", flush=True)
        if os.environ.get("SMOKE_KEEP") == "1":
            log(f"SMOKE_KEEP=1: left running; tear down with: {' '.join(COMPOSE)} down -v")
        else:
            compose("down", "-v", "--remove-orphans", check_rc=False)
    log(("PASS" if ok else "FAIL") + f" in {time.monotonic() - START:.0f}s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
