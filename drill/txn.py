"""The transactional consume-transform-produce stage: an exactly-once librdkafka application.

usage: txn.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP TRANSACTIONAL_ID OUT_FILE

A read_committed consumer in GROUP reads IN_TOPIC; each record (partition p, offset o, value v)
becomes one record of OUT_TOPIC's partition p with the same key and the value `<attempt>|p|o|v`,
produced inside a transaction that also commits the consumer's offsets
(send_offsets_to_transaction, so the group's offsets move only with the output). `<attempt>`
names the transaction: `<transactional id>.<producer incarnation>.<count>`.

Errors are handled as an exactly-once application must:
- retriable (a timeout): the same call again, for up to the transaction timeout (by then the
  coordinator has aborted the transaction), then as fatal;
- abortable (`txn_requires_abort`): abort, then rewind every assigned partition to the group's
  committed offset, so the aborted records are consumed and produced again;
- fatal (fenced, or anything else): the producer is closed and a new one is made with the same
  transactional id (init_transactions fences the old one and aborts what it left open); then
  the same rewind;
- a rebalance (partitions revoked or lost): the open transaction is aborted first, so that no
  offsets of a partition this member no longer owns are committed.

Lines of OUT_FILE, one per transaction that ended:
  T <ms> <attempt> <records> <spans>            committed
  A <ms> <attempt> <records> <spans> <reason>   aborted (abort_transaction returned, or the
                                                transaction never asked to commit and its
                                                producer was replaced)
  U <ms> <attempt> <records> <spans> <reason>   outcome unknown (a fatal error mid-commit)
  R <ms> <reason>                               producer recreated
  E <ms> <attempt> <call> <error>               a retriable error (the call is retried for up
                                                to the transaction timeout, then the producer
                                                is treated as failed)
where <spans> is `<p>:<first>-<next>,...`, the input offsets [first, next) the transaction
consumed (`-` for none).
SIGTERM: the open transaction is committed, then the consumer leaves the group; exit 0.
"""

import os
import signal
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

BATCH_RECORDS = 500
BATCH_SECONDS = 0.5
CALL_TIMEOUT = 30
TXN_TIMEOUT_MS = 60000
RETRY_LIMIT = TXN_TIMEOUT_MS / 1000


def now_ms():
    return int(time.time() * 1000)


class Fatal(Exception):
    """The producer must be recreated."""


class Hung(Fatal):
    """A transactional call did not return within its own timeout: librdkafka's
    send_offsets_to_transaction can wait forever for a group coordinator that moved
    (confluentinc/librdkafka#5456, #5511). The producer is abandoned, never touched again."""


class Stage:
    def __init__(self, bootstrap, src, dst, group, txn_id, out_path):
        self.bootstrap, self.src, self.dst, self.txn_id = bootstrap, src, dst, txn_id
        self.out = open(out_path, "a", buffering=1)
        self.incarnation = 0
        self.count = 0
        self.producer = None
        self.in_txn = False
        self.attempt = None
        self.records = 0
        self.ranges = {}  # input partition -> [first, next)
        self.began = 0.0
        self.need_rewind = False
        self.abandoned = []  # producers stuck in a call (see Hung)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
        })
        self.consumer.subscribe([src], on_revoke=self.on_revoke, on_lost=self.on_revoke)
        self.new_producer("start")

    def log(self, line):
        self.out.write(line + "\n")

    # ------------------------------------------------------------------ the producer
    def new_producer(self, reason):
        if reason != "start":
            self.log(f"R {now_ms()} {reason}")
        if self.producer is not None:
            # Kept, not destroyed: its destruction could wait on the broker we gave up on.
            self.abandoned.append(self.producer)
        self.producer = None
        while True:
            self.incarnation += 1
            p = Producer({
                "bootstrap.servers": self.bootstrap,
                "transactional.id": self.txn_id,
                "acks": "all",
                "linger.ms": 5,
                "transaction.timeout.ms": TXN_TIMEOUT_MS,
                "message.timeout.ms": TXN_TIMEOUT_MS,
                "socket.timeout.ms": 10000,
                "reconnect.backoff.max.ms": 1000,
                # The transaction manager's state changes and request errors, to the stage's
                # output file: what a hang or an abort is diagnosed from.
                "debug": "eos",
            })
            for _ in range(10):
                try:
                    p.init_transactions(CALL_TIMEOUT)
                    self.producer = p
                    return
                except KafkaException as e:
                    if not e.args[0].retriable():
                        break
            # Not retriable (or never done): a fresh producer.
            time.sleep(1)

    def call(self, fn, *args):
        """A transactional call, retried while its error is retriable, for at most the
        transaction timeout: past it the coordinator has aborted the transaction anyway, and
        a producer still retrying is treated as failed (a new one fences it)."""
        start = time.monotonic()
        while True:
            try:
                return self.bounded(fn, *args)
            except KafkaException as e:
                err = e.args[0]
                if err.retriable():
                    self.log(f"E {now_ms()} {self.attempt} {fn.__name__} {err.name()}")
                    if time.monotonic() - start > RETRY_LIMIT:
                        raise Fatal(f"retried-{fn.__name__}: {err.str()}") from e
                    continue
                if err.txn_requires_abort():
                    raise
                raise Fatal(f"{err.name()}: {err.str()}") from e

    def bounded(self, fn, *args):
        """`fn(*args)` in a thread (the client releases the GIL while it waits), given
        CALL_TIMEOUT plus a margin to return."""
        box = {}

        def run():
            try:
                box["r"] = fn(*args)
            except BaseException as e:  # noqa: B902 - handed to the caller
                box["e"] = e

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(CALL_TIMEOUT + 15)
        if t.is_alive():
            self.abandoned.append(self.producer)
            self.producer = None
            self.log(f"E {now_ms()} {self.attempt} {fn.__name__} hung")
            raise Hung(f"hung-{fn.__name__}: no return within {CALL_TIMEOUT + 15}s")
        if "e" in box:
            raise box["e"]
        return box.get("r")

    # ------------------------------------------------------------------ transactions
    def begin(self):
        self.count += 1
        self.attempt = f"{self.txn_id}.{self.incarnation}.{self.count}"
        self.call(self.producer.begin_transaction)
        self.in_txn = True
        self.records = 0
        self.ranges = {}
        self.began = time.monotonic()

    def produce(self, msg):
        p, off = msg.partition(), msg.offset()
        value = f"{self.attempt}|{p}|{off}|{msg.value().decode()}"
        while True:
            try:
                self.producer.produce(self.dst, key=msg.key(), value=value, partition=p)
                break
            except BufferError:
                self.producer.poll(0.1)
        self.records += 1
        r = self.ranges.setdefault(p, [off, off + 1])
        r[1] = off + 1
        self.producer.poll(0)

    def commit(self):
        offsets = [TopicPartition(self.src, p, nxt) for p, (_first, nxt) in
                   sorted(self.ranges.items())]
        if offsets:
            self.call(self.producer.send_offsets_to_transaction, offsets,
                      self.consumer.consumer_group_metadata(), CALL_TIMEOUT)
        self.call(self.producer.commit_transaction, CALL_TIMEOUT)
        self.in_txn = False
        self.log(f"T {now_ms()} {self.attempt} {self.records} {self.spans()}")

    def spans(self):
        return ",".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(self.ranges.items())) or "-"

    def abort(self, reason):
        self.call(self.producer.abort_transaction, CALL_TIMEOUT)
        self.in_txn = False
        self.log(f"A {now_ms()} {self.attempt} {self.records} {self.spans()} {reason}")

    def end(self, commit, reason=""):
        """Commits (or aborts) the open transaction, handling every error class. After anything
        but a commit the consumer must rewind (a rebalance's new assignment does that itself)."""
        if not self.in_txn:
            return
        tried_commit = False
        try:
            if commit:
                tried_commit = True
                try:
                    self.commit()
                    return
                except KafkaException as e:
                    reason = f"abortable:{e.args[0].name()}"
            try:
                self.abort(reason)
            except KafkaException as e:
                raise Fatal(f"{e.args[0].name()}: abort failed") from e
        except Fatal as f:
            name = str(f).split(":")[0]
            # A fatal error during a commit leaves its outcome unknown. Otherwise the transaction
            # never asked to commit: the new producer's init_transactions aborts it.
            self.log(f"{'U' if tried_commit else 'A'} {now_ms()} {self.attempt} {self.records} "
                     f"{self.spans()} fatal:{name}")
            self.in_txn = False
            self.new_producer(name)
        self.need_rewind = True

    def rewind(self):
        """Every assigned partition back to the group's committed offset (read with
        require_stable, which read_committed consumers ask for)."""
        assignment = self.consumer.assignment()
        if not assignment:
            self.need_rewind = False
            return
        try:
            committed = self.consumer.committed(assignment, CALL_TIMEOUT)
        except KafkaException:
            return  # try again on the next loop
        for tp in committed:
            if tp.error is not None:
                return
        for tp in committed:
            off = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            try:
                self.consumer.seek(TopicPartition(self.src, tp.partition, off))
            except KafkaException:
                return  # not fetching yet: try again
        self.need_rewind = False

    def on_revoke(self, _consumer, _partitions):
        # Runs inside consumer.poll: end the transaction before the partitions go elsewhere.
        if self.in_txn:
            self.end(False, "rebalance")
        self.need_rewind = False  # the next assignment starts from the committed offsets

    # ------------------------------------------------------------------ the loop
    def run(self, stopping):
        while not stopping:
            if self.need_rewind:
                self.rewind()
                if self.need_rewind:
                    time.sleep(0.2)
                    continue
            msg = self.consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                try:
                    if not self.in_txn:
                        self.begin()
                    self.produce(msg)
                except KafkaException as e:
                    self.end(False, f"abortable:{e.args[0].name()}")
                    self.need_rewind = True
                    continue
                except Fatal as f:
                    if self.in_txn:
                        self.log(f"A {now_ms()} {self.attempt} {self.records} {self.spans()} "
                                 "fatal")
                    self.in_txn = False
                    self.new_producer(str(f).split(":")[0])
                    self.need_rewind = True
                    continue
            if self.in_txn and (self.records >= BATCH_RECORDS or
                                time.monotonic() - self.began >= BATCH_SECONDS):
                self.end(True)
            elif self.producer is not None:
                self.producer.poll(0)
        self.end(True)
        self.consumer.close()
        self.out.close()


def main():
    bootstrap, src, dst, group, txn_id, out_path = sys.argv[1:7]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    Stage(bootstrap, src, dst, group, txn_id, out_path).run(stopping)
    # Without waiting for the threads of an abandoned producer (see Hung).
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
