"""A consumer-group member that commits offsets synchronously and logs every successful commit.

usage: consumer.py BOOTSTRAP TOPIC GROUP OUT_FILE

Lines of OUT_FILE: `C <ms> <partition> <offset>` for each partition of a commit that succeeded.
SIGTERM makes it commit once more, leave the group and exit 0.
"""

import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException


def main():
    bootstrap, topic, group, out_path = sys.argv[1:5]
    out = open(out_path, "a", buffering=1)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
    })
    c.subscribe([topic])
    last_commit = time.monotonic()

    def commit():
        try:
            done = c.commit(asynchronous=False)
        except KafkaException:
            return  # nothing consumed yet, or the coordinator is moving: try again later
        now = int(time.time() * 1000)
        for tp in done or []:
            if tp.error is None and tp.offset >= 0:
                out.write(f"C {now} {tp.partition} {tp.offset}\n")

    while not stopping:
        c.poll(0.2)
        if time.monotonic() - last_commit >= 1.0:
            commit()
            last_commit = time.monotonic()
    commit()
    c.close()
    out.close()


if __name__ == "__main__":
    main()
