"""One idempotent librdkafka producer (acks=all) writing the drill's records and logging every ack.

usage: producer.py BOOTSTRAP TOPIC PARTITIONS PRODUCER_ID OUT_FILE RATE

Record i of producer P goes to partition i % PARTITIONS with key "P" and value "P:i". Each
delivery report is one line of OUT_FILE:
  A <seq> <partition> <offset> <ms>     acknowledged (offset -1: acknowledged, offset unknown)
  F <seq> <partition> <error>           failed (not acknowledged: may or may not be stored)
  X <error>                             fatal producer error, the producer stops
SIGTERM stops producing, flushes what is in flight, and exits 0.
"""

import signal
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, parts, pid, out_path, rate = sys.argv[1:7]
    parts, rate = int(parts), float(rate)
    out = open(out_path, "a", buffering=1)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    fatal = []

    def on_error(err):
        if err.fatal():
            fatal.append(str(err))

    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 120000,
        "socket.timeout.ms": 10000,
        "reconnect.backoff.max.ms": 1000,
        "error_cb": on_error,
        # Idempotence state changes (epoch bumps and their reasons) to the producer's output.
        "debug": "eos",
    })

    def report(err, msg):
        seq = int(msg.value().decode().split(":")[1])
        if err is None:
            # librdkafka can report a delivery whose offset it does not know (-1): a retry that
            # the broker had already written. The checker then looks the value up by content.
            off = msg.offset()
            off = -1 if off is None or off < 0 else off
            out.write(f"A {seq} {msg.partition()} {off} {int(time.time() * 1000)}\n")
        else:
            out.write(f"F {seq} {msg.partition()} {err.name()}\n")

    seq = 0
    start = time.monotonic()
    while not stopping and not fatal:
        due = start + seq / rate
        now = time.monotonic()
        if due > now:
            p.poll(min(due - now, 0.05))
            continue
        try:
            p.produce(topic, key=pid, value=f"{pid}:{seq}", partition=seq % parts,
                      on_delivery=report)
            seq += 1
        except BufferError:
            p.poll(0.1)
        except Exception as e:  # KafkaException for a fatal error
            fatal.append(str(e))
        p.poll(0)
    remaining = p.flush(60)
    if fatal:
        out.write(f"X {fatal[0]}\n")
    out.write(f"E {seq} {remaining}\n")
    out.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
