"""Read partition 0 of TOPIC from the beginning up to its end for the given isolation level
(read_committed: the last stable offset) with confluent-kafka or kafka-python. Prints one
JSON line: {"records": [{"offset": o, "value": v}, ...], "position": p}.

usage: txn_consume.py confluent|kafka-python BOOTSTRAP TOPIC read_committed|read_uncommitted
"""
import json
import sys
import time

lib, bootstrap, topic, isolation = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
records = []
deadline = time.time() + 60

if lib == "confluent":
    from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "txn-consume-unused",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
    })
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    eof = False
    while not eof and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof = True
                continue
            raise SystemExit(f"consume error: {m.error()}")
        records.append({"offset": m.offset(), "value": m.value().decode()})
    position = c.position([TopicPartition(topic, 0)])[0].offset
    c.close()
    if not eof:
        raise SystemExit("no end of partition within 60 s")
else:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      auto_offset_reset="earliest", isolation_level=isolation)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    end = c.end_offsets([tp])[tp]
    while c.position(tp) < end and time.time() < deadline:
        for _, msgs in c.poll(timeout_ms=1000).items():
            for m in msgs:
                records.append({"offset": m.offset, "value": m.value.decode()})
    position = c.position(tp)
    c.close()
    if position < end:
        raise SystemExit(f"position {position} below end {end} after 60 s")

print(json.dumps({"records": records, "position": position}))
