"""One kafka-python group member that runs until it is killed: subscribes to TOPIC in GROUP (range,
session.timeout.ms 6000) and prints one JSON line {"partitions": [...]} each time its assignment changes.

usage: kafka_python_member.py BOOTSTRAP TOPIC GROUP
"""
import json
import sys

from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id="py-member",
                  partition_assignment_strategy=[RangePartitionAssignor], enable_auto_commit=False,
                  session_timeout_ms=6000, heartbeat_interval_ms=300, max_poll_interval_ms=30000)
c.subscribe([topic])
last = None
while True:
    c.poll(timeout_ms=100)
    now = sorted(tp.partition for tp in c.assignment())
    if now != last:
        print(json.dumps({"partitions": now}), flush=True)
        last = now
