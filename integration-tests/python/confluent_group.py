"""Consumer group with confluent-kafka: N consumers subscribe to the (empty) TOPIC in one group; once every
member holds a non-empty assignment and together they cover PARTITIONS partitions, the script produces
PER_PARTITION records to each partition, polls until every record was consumed, commits synchronously and
prints one JSON line:
{"assignments": [[partitions of consumer 0], ...], "consumed": count, "duplicates": n, "committed": {p: offset}}

Producing only after the assignment is stable means no partition moves while records are in flight, so every
record must be consumed exactly once.

usage: confluent_group.py BOOTSTRAP TOPIC GROUP CONSUMERS PARTITIONS PER_PARTITION
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
n, partitions, per_partition = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
expected = partitions * per_partition
consumers = [Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 500,
    "partition.assignment.strategy": "range",
}) for _ in range(n)]
for c in consumers:
    c.subscribe([topic])

seen = {}
dups = 0


def poll_all():
    global dups
    for c in consumers:
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        k = (m.partition(), m.offset())
        if k in seen:
            dups += 1
        seen[k] = True


def current():
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


# 1. Wait for a stable, complete assignment (unchanged for 2 s).
deadline = time.time() + 60
stable_since, last = None, None
while True:
    if time.time() > deadline:
        sys.exit(f"no stable assignment: {current()}")
    poll_all()
    a = current()
    if all(a) and sorted(p for x in a for p in x) == list(range(partitions)):
        if a != last:
            stable_since, last = time.time(), a
        elif time.time() - stable_since > 2.0:
            break
    else:
        stable_since, last = None, None
assignments = last

# 2. Produce, then consume everything.
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
for p in range(partitions):
    for i in range(per_partition):
        producer.produce(topic, value=f"p{p}-{i}".encode(), partition=p)
if producer.flush(30) != 0:
    sys.exit("produce did not complete")
deadline = time.time() + 60
while len(seen) < expected and time.time() < deadline:
    poll_all()
# A short drain: anything delivered twice would show up here.
drain_until = time.time() + 1.0
while time.time() < drain_until:
    poll_all()
if current() != assignments:
    sys.exit(f"assignment changed while consuming: {assignments} -> {current()}")

# 3. Commit synchronously (each member its own positions) and read the committed offsets back.
for c in consumers:
    c.commit(asynchronous=False)
committed = {}
for tp in consumers[0].committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30):
    committed[str(tp.partition)] = tp.offset
for c in consumers:
    c.close()
print(json.dumps({"assignments": assignments, "consumed": len(seen), "duplicates": dups, "committed": committed}))
