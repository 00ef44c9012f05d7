"""Produce records with keys, headers and timestamps using confluent-kafka (librdkafka 2.x), then read
them back from the beginning of partition 0. Prints one JSON line: what was acknowledged and what was read.

usage: confluent_roundtrip.py BOOTSTRAP TOPIC COUNT COMPRESSION [ACKS]
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bootstrap, topic, count, compression = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
acks = sys.argv[5] if len(sys.argv) > 5 else "all"

p = Producer({
    "bootstrap.servers": bootstrap,
    "compression.type": compression,
    "acks": acks,
    "enable.idempotence": acks == "all",
    "linger.ms": 5,
    "message.timeout.ms": 30000,
})
acked = []
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(str(err))
    else:
        acked.append(msg.offset())


base_ts = 1700000000000
for i in range(count):
    key = None if i % 10 == 9 else f"key-{i}".encode()
    headers = [("h1", f"v{i}".encode()), ("empty", b""), ("null", None)] if i % 2 == 0 else []
    value = None if i % 17 == 16 else (f"value-{i}-" + "x" * (i % 50)).encode()
    while True:
        try:
            p.produce(topic, value=value, key=key, headers=headers, partition=0, timestamp=base_ts + i,
                      on_delivery=on_delivery)
            break
        except BufferError:
            p.poll(0.1)
    p.poll(0)
left = p.flush(60)
if left or errors:
    print(json.dumps({"error": f"flush left={left} errors={errors[:5]}"}))
    sys.exit(1)

c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "unused",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
})
c.assign([TopicPartition(topic, 0, 0)])
records = []
deadline = time.time() + 60
while len(records) < count and time.time() < deadline:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        raise KafkaException(m.error())
    ts_type, ts = m.timestamp()
    records.append({
        "offset": m.offset(),
        "key": None if m.key() is None else m.key().decode(),
        "value": None if m.value() is None else m.value().decode(),
        "headers": [[k, None if v is None else v.decode()] for k, v in (m.headers() or [])],
        "timestamp": ts,
        "timestamp_type": ts_type,
    })
c.close()
print(json.dumps({"acked": sorted(acked), "records": records}))
