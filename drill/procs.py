"""The cluster's processes: a ZooKeeper ensemble and samsa-broker, each in its host's namespace.

Each process is started in a session of its own (`start_new_session`), so a signal to its process
group reaches it whatever wrapper sits in front. Output goes to `<run>/<host>/out.log`, through a
pipe that the drill drains: a broker under a file-size limit (the full-disk fault) must not fail
on its own log file.
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import net

ZK_BIN = "/usr/share/zookeeper/bin/zkServer.sh"


class Proc:
    def __init__(self, host, run_dir):
        self.host = host
        self.dir = os.path.join(run_dir, host)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "out.log")
        self.p = None
        self.stopped = False  # SIGSTOPped

    def argv(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def start(self):
        assert not self.running(), f"{self.host} already running"
        log = open(self.log_path, "ab", buffering=0)
        log.write(f"--- start {time.strftime('%H:%M:%S')} ---\n".encode())
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", net.ns(self.host)] + self.argv(),
            cwd=self.dir, env=self.env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.stopped = False

        def drain(pipe, out):
            for chunk in iter(lambda: pipe.read1(65536), b""):
                out.write(chunk)
            out.close()

        threading.Thread(target=drain, args=(self.p.stdout, log), daemon=True).start()

    def running(self):
        return self.p is not None and self.p.poll() is None

    @property
    def pid(self):
        return self.p.pid if self.p else None

    def signal(self, sig):
        if self.running():
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def kill9(self):
        if self.stopped:
            self.cont()
        self.signal(signal.SIGKILL)
        if self.p:
            self.p.wait()

    def stop(self):
        self.signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        self.signal(signal.SIGCONT)
        self.stopped = False

    def terminate(self, timeout=90):
        """SIGTERM and wait; SIGKILL after `timeout`. Returns the exit code."""
        if not self.running():
            return self.p.returncode if self.p else None
        if self.stopped:
            self.cont()
        self.signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class ZkServer(Proc):
    def __init__(self, myid, host, run_dir, ensemble):
        super().__init__(host, run_dir)
        self.myid = myid
        self.ip = ensemble[myid]
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{myid}\n")
        servers = "".join(f"server.{i}={ip}:2888:3888\n" for i, ip in sorted(ensemble.items()))
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                f"tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={data}\n"
                f"clientPort=2181\nclientPortAddress={self.ip}\nmaxSessionTimeout=60000\n"
                f"4lw.commands.whitelist=*\nadmin.enableServer=false\n{servers}")

    def argv(self):
        return [ZK_BIN, "start-foreground", self.cfg]

    def env(self):
        e = dict(os.environ)
        e["ZOO_LOG_DIR"] = self.dir
        e["JVMFLAGS"] = "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
        return e

    def mode(self):
        """'leader', 'follower', or None (not serving), from the `srvr` four-letter word."""
        try:
            with socket.create_connection((self.ip, 2181), timeout=2) as s:
                s.sendall(b"srvr")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            for line in data.decode(errors="replace").splitlines():
                if line.startswith("Mode:"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            return None
        return None


class Broker(Proc):
    def __init__(self, broker_id, host, ip, run_dir, binary, zk_connect, extra):
        super().__init__(host, run_dir)
        self.id = broker_id
        self.ip = ip
        self.binary = binary
        self.log_dir = os.path.join(self.dir, "logs")
        self.fsize = None
        props = {
            "broker.id": broker_id,
            "listeners": f"PLAINTEXT://{ip}:9092",
            "advertised.listeners": f"PLAINTEXT://{ip}:9092",
            "log.dirs": self.log_dir,
            "zookeeper.connect": zk_connect,
            "zookeeper.session.timeout.ms": 6000,
            "offsets.topic.replication.factor": 3,
            "offsets.topic.num.partitions": 5,
            "transaction.state.log.replication.factor": 3,
            "transaction.state.log.min.isr": 2,
            "transaction.state.log.num.partitions": 5,
            "default.replication.factor": 3,
            "min.insync.replicas": 2,
            "unclean.leader.election.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            "replica.lag.time.max.ms": 10000,
            "log.segment.bytes": 1 << 20,
        }
        props.update(extra)
        self.props = props
        self.props_path = os.path.join(self.dir, "server.properties")
        self.write_props()

    def write_props(self):
        with open(self.props_path, "w") as f:
            for k, v in self.props.items():
                f.write(f"{k}={v}\n")

    def set_prop(self, key, value):
        """Changes server.properties; takes effect at the next start."""
        self.props[key] = value
        self.write_props()

    def argv(self):
        return [self.binary, self.props_path]

    def env(self):
        e = dict(os.environ)
        e.setdefault("RUST_LOG", "info")
        return e

    def start(self):
        super().start()
        if self.fsize is not None:
            subprocess.run(["prlimit", f"--pid={self.p.pid}", f"--fsize={self.fsize}"],
                           check=False, capture_output=True)

    def set_file_size_limit(self, nbytes):
        """Full disk: writes past `nbytes` fail with EFBIG (the broker ignores SIGXFSZ)."""
        subprocess.run(["prlimit", f"--pid={self.p.pid}", f"--fsize={nbytes}"], check=True,
                       capture_output=True)

    def largest_log_file(self):
        biggest = 0
        for root, _dirs, files in os.walk(self.log_dir):
            for name in files:
                try:
                    biggest = max(biggest, os.path.getsize(os.path.join(root, name)))
                except OSError:
                    pass
        return biggest

    def wipe(self):
        shutil.rmtree(self.log_dir, ignore_errors=True)
