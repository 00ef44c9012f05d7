"""confluent-kafka's transactional producer against the transaction coordinator: on partition 0
of TOPIC it commits c1-0..2 with offsets {SOURCE-0: 3} of group GROUP
(send_offsets_to_transaction), aborts a-0..2 with offsets {SOURCE-0: 5}, then commits c3-0..1
without offsets. Afterwards it reads the group's committed offset of SOURCE-0 with confluent-kafka
and with kafka-python. Prints one JSON line: {"confluent_offset": o, "kafka_python_offset": o}.

usage: txn_produce.py BOOTSTRAP TOPIC SOURCE GROUP TXN_ID
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, topic, source, group, txn_id = sys.argv[1:6]

p = Producer({
    "bootstrap.servers": bootstrap,
    "transactional.id": txn_id,
    "transaction.timeout.ms": 60000,
})
# The consumer only supplies the group metadata for send_offsets_to_transaction.
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
p.init_transactions(120)


def txn(prefix, n, offset, commit):
    p.begin_transaction()
    for i in range(n):
        p.produce(topic, value=f"{prefix}-{i}".encode(), partition=0)
    p.flush(60)
    if offset is not None:
        p.send_offsets_to_transaction([TopicPartition(source, 0, offset)],
                                      c.consumer_group_metadata(), 60)
    if commit:
        p.commit_transaction(120)
    else:
        p.abort_transaction(120)


txn("c1", 3, 3, True)
txn("a", 3, 5, False)
txn("c3", 2, None, True)

deadline = time.time() + 60
confluent_offset = None
while time.time() < deadline:
    confluent_offset = c.committed([TopicPartition(source, 0)], timeout=30)[0].offset
    if confluent_offset >= 0:
        break
    time.sleep(0.2)
c.close()

from kafka import KafkaConsumer, TopicPartition as KTopicPartition  # noqa: E402

kc = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
kafka_python_offset = kc.committed(KTopicPartition(source, 0))
kc.close()
print(json.dumps({"confluent_offset": confluent_offset, "kafka_python_offset": kafka_python_offset}))
