"""Produce with kafka-python at the broker's current protocol (magic 2 batches, headers),
then consume the same partition with a consumer pinned to an old protocol with
`api_version`, so it sends Fetch v1 ((0, 9): magic 0) or Fetch v2 ((0, 10, 0): magic 1) and
the broker has to down-convert. Prints one JSON line.

usage: kafka_python_old_fetch.py BOOTSTRAP TOPIC COUNT COMPRESSION API_VERSION (e.g. 0.9)
       [MAX_PARTITION_FETCH_BYTES (default 65536)]
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, topic, count, compression, api = sys.argv[1:6]
fetch_bytes = int(sys.argv[6]) if len(sys.argv) > 6 else 65536
count = int(count)
api_version = tuple(int(x) for x in api.split("."))

p = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                  compression_type=None if compression == "none" else compression,
                  linger_ms=5, request_timeout_ms=30000)
base_ts = int(time.time() * 1000) - 60000
futures = []
for i in range(count):
    key = None if i % 10 == 9 else f"key-{i}".encode()
    headers = [("h", f"v{i}".encode())] if i % 2 == 0 else []
    value = (f"value-{i}-" + "x" * (i % 50)).encode()
    futures.append(p.send(topic, value=value, key=key, headers=headers, partition=0,
                          timestamp_ms=base_ts + i))
p.flush(60)
acked = sorted(f.get(timeout=60).offset for f in futures)
p.close()

c = KafkaConsumer(bootstrap_servers=bootstrap, api_version=api_version,
                  enable_auto_commit=False, auto_offset_reset="earliest",
                  max_partition_fetch_bytes=fetch_bytes)
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
                "headers": len(m.headers or []),
                "timestamp": m.timestamp,
            })
c.close()
print(json.dumps({"acked": acked, "base_ts": base_ts, "records": records}))
