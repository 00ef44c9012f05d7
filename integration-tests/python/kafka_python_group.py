"""Consumer-group rebalances with kafka-python: two members share TOPIC (PARTITIONS partitions), a third joins,
then the first leaves (close -> LeaveGroup). All members are polled from this thread in turn. After each phase
the script waits until the live members hold disjoint, complete, equal-sized assignments in one generation and
records them. Prints one JSON line:
{"phases": [{"clients": [{"client": "m0", "generation": g, "partitions": [...]}, ...]}, ...]}

usage: kafka_python_group.py BOOTSTRAP TOPIC GROUP ASSIGNOR PARTITIONS [API_VERSION]
       ASSIGNOR: range | roundrobin; API_VERSION (e.g. 0.10.2) pins old request versions
"""
import json
import sys
import time

from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

bootstrap, topic, group, assignor = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
partitions = int(sys.argv[5])
api_version = tuple(int(x) for x in sys.argv[6].split(".")) if len(sys.argv) > 6 else None
strategy = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[assignor]


def member(name):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=name,
                      partition_assignment_strategy=[strategy], enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=300,
                      max_poll_interval_ms=30000, request_timeout_ms=30000, api_version=api_version)
    c.subscribe([topic])
    return [name, c]


def generation(c):
    # kafka-python keeps the generation of the last completed join on its coordinator.
    return c._coordinator._generation.generation_id


def view(live):
    return [{"client": name, "generation": generation(c),
             "partitions": sorted(tp.partition for tp in c.assignment())} for name, c in live]


def await_phase(live):
    deadline = time.time() + 60
    while True:
        for _, c in live:
            c.poll(timeout_ms=50)
        v = view(live)
        parts = [p for m in v for p in m["partitions"]]
        gens = {m["generation"] for m in v}
        if (sorted(parts) == list(range(partitions))
                and all(len(m["partitions"]) == partitions // len(live) for m in v)
                and len(gens) == 1 and min(gens) > 0):
            return {"clients": v}
        if time.time() > deadline:
            sys.exit(f"no balanced assignment: {v}")


live = [member("m0"), member("m1")]
phases = [await_phase(live)]
live.append(member("m2"))
phases.append(await_phase(live))
live.pop(0)[1].close()
phases.append(await_phase(live))
for _, c in live:
    c.close()
print(json.dumps({"phases": phases}))
