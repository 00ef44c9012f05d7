"""Consume-transform-produce with confluent-kafka (librdkafka): a consumer in group eos-g reads
10 records of IN, a transactional producer writes one record to OUT and commits the consumer's
positions with send_offsets_to_transaction (TxnOffsetCommit with the member id and generation)
in the same transaction. Prints {"got": n, "committed": offset of IN-0 for the group}.

usage: txn_eos.py BOOTSTRAP IN OUT
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
p0 = Producer({"bootstrap.servers": bootstrap})
for i in range(10):
    p0.produce(src, value=f"m{i}".encode(), partition=0)
p0.flush(60)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-g", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "isolation.level": "read_committed"})
c.subscribe([src])
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "py-eos"})
p.init_transactions(60)
got = 0
deadline = time.time() + 60
while got < 10 and time.time() < deadline:
    m = c.poll(1.0)
    if m is None or m.error():
        continue
    got += 1
p.begin_transaction()
p.produce(dst, value=b"x", partition=0)
p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 60)
p.commit_transaction(60)
committed = c.committed([TopicPartition(src, 0)], 60)[0].offset
c.close()
print(json.dumps({"got": got, "committed": committed}))
