"""Produce and read back with kafka-python (pure Python client). Prints one JSON line like
confluent_roundtrip.py.

usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC COUNT COMPRESSION
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, topic, count, compression = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

p = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                  compression_type=None if compression == "none" else compression,
                  linger_ms=5, request_timeout_ms=30000)
futures = []
base_ts = 1700000000000
for i in range(count):
    key = None if i % 10 == 9 else f"key-{i}".encode()
    headers = [("h1", f"v{i}".encode()), ("empty", b"")] if i % 2 == 0 else []
    value = (f"value-{i}-" + "x" * (i % 50)).encode()
    futures.append(p.send(topic, value=value, key=key, headers=headers, partition=0, timestamp_ms=base_ts + i))
p.flush(60)
acked = sorted(f.get(timeout=60).offset for f in futures)
p.close()

c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
tp = TopicPartition(topic, 0)
c.assign([tp])
c.seek_to_beginning(tp)
records = []
deadline = time.time() + 60
while len(records) < count and time.time() < deadline:
    for _, msgs in c.poll(timeout_ms=1000).items():
        for m in msgs:
            records.append({
                "offset": m.offset,
                "key": None if m.key is None else m.key.decode(),
                "value": None if m.value is None else m.value.decode(),
                "headers": [[k, None if v is None else v.decode()] for k, v in (m.headers or [])],
                "timestamp": m.timestamp,
                "timestamp_type": m.timestamp_type,
            })
c.close()
print(json.dumps({"acked": acked, "records": records}))
