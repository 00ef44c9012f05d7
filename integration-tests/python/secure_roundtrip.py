"""Produce COUNT records to partition 0 of TOPIC and read them back, over a secured
listener, with confluent-kafka or kafka-python. CONFIG_JSON holds the client's own
security settings (confluent: "security.protocol", "ssl.ca.location", "sasl.mechanisms",
...; kafka-python: security_protocol, ssl_cafile, sasl_mechanism, ...).
Prints one JSON line: {"acked": N, "values": [...]} or {"error": "..."} (exit 0 either
way, so a test can assert on the refusal a client reports).

usage: secure_roundtrip.py confluent|kafka-python BOOTSTRAP TOPIC COUNT CONFIG_JSON
"""
import json
import sys
import time

client, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = json.loads(sys.argv[5])


def confluent():
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    errors = []

    def on_error(e):
        errors.append(str(e))

    p = Producer(dict(extra, **{"bootstrap.servers": bootstrap, "acks": "all",
                                "message.timeout.ms": 20000, "error_cb": on_error}))
    acked = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append(msg.offset())

    for i in range(count):
        p.produce(topic, value=f"secure-{i}".encode(), partition=0, on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(30)
    if left or len(acked) != count:
        return {"error": f"left={left} errors={errors[:3]}"}
    c = Consumer(dict(extra, **{"bootstrap.servers": bootstrap, "group.id": "secure",
                                "enable.auto.commit": False, "error_cb": on_error}))
    c.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.time() + 30
    while len(values) < count and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        values.append(m.value().decode())
    c.close()
    return {"acked": len(acked), "values": values}


def kafka_python():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=20000,
                      max_block_ms=20000, **extra)
    fs = [p.send(topic, value=f"secure-{i}".encode(), partition=0) for i in range(count)]
    p.flush(30)
    acked = len([f.get(timeout=30) for f in fs])
    p.close()
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **extra)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    values = []
    deadline = time.time() + 30
    while len(values) < count and time.time() < deadline:
        for _, msgs in c.poll(timeout_ms=1000).items():
            values.extend(m.value.decode() for m in msgs)
    c.close()
    return {"acked": acked, "values": values}


try:
    out = confluent() if client == "confluent" else kafka_python()
except Exception as e:  # the refusal a client reports is the test's subject
    out = {"error": f"{type(e).__name__}: {e}"}
print(json.dumps(out))
