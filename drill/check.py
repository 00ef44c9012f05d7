"""The checker: what the drill recorded against what the cluster kept.

Inputs are the producers' ack logs, the consumers' commit logs, the committed offsets sampled
during the run, the leader/ISR transitions seen in ZooKeeper, a full read of the topic after the
faults, and each replica's log segments on disk after a clean stop. Every check appends a line to
`violations`; an empty list means Kafka's guarantees held.
"""

import glob
import os
import struct
from collections import defaultdict


def read_acks(paths):
    """{producer_id: {"acked": [(seq, partition, offset, ms)], "failed": n, "fatal": [..]}}."""
    out = {}
    for pid, path in paths.items():
        acked, failed, fatal = [], 0, []
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            f = line.split()
            if not f:
                continue
            if f[0] == "A" and len(f) == 5:
                off = -1 if f[3] == "None" else int(f[3])
                acked.append((int(f[1]), int(f[2]), off, int(f[4])))
            elif f[0] == "F":
                failed += 1
            elif f[0] == "X":
                fatal.append(line[2:])
        out[pid] = {"acked": acked, "failed": failed, "fatal": fatal}
    return out


def check_records(acks, stored, violations, producer_of=None, resent=None):
    """`stored`: {partition: {offset: (key, value)}} from a full read after the faults.
    Returns (acked, lost, duplicated).

    `producer_of(partition, offset)` -> (producer id, producer epoch) of the batch holding it
    (from the replicas on disk). A value stored twice by one producer id under two different
    producer epochs was sent again by the client after it bumped its epoch: the broker
    deduplicates within an epoch only, by design, so that copy is the client's (librdkafka's
    idempotent producer re-sends a batch it wrongly took for unwritten after
    NOT_LEADER_OR_FOLLOWER, confluentinc/librdkafka#4953). Such copies go to `resent`, not to
    the duplicates; copies within one epoch are the broker's and are violations."""
    n_acked = n_lost = 0
    by_value = {}
    for pid, a in acks.items():
        for seq, part, off, _ms in a["acked"]:
            n_acked += 1
            want = (pid, f"{pid}:{seq}")
            if off < 0:
                # Acknowledged without an offset: it must be stored somewhere in the partition.
                if part not in by_value:
                    by_value[part] = {v: o for o, v in stored.get(part, {}).items()}
                got = want if want in by_value[part] else None
            else:
                got = stored.get(part, {}).get(off)
            if got != want:
                n_lost += 1
                if n_lost <= 20:
                    violations.append(
                        f"lost: {want[1]} acknowledged at partition {part} offset {off}, "
                        f"found {got!r}")
    n_dup = 0
    for part, recs in stored.items():
        seen = {}
        last_seq = {}
        for off in sorted(recs):
            key, value = recs[off]
            if value in seen and producer_of is not None and resent is not None:
                a, b = producer_of(part, seen[value]), producer_of(part, off)
                if a is not None and b is not None and a[0] == b[0] and a[1] != b[1]:
                    resent.append(f"{value} at partition {part} offsets {seen[value]} "
                                  f"(producer {a[0]} epoch {a[1]}) and {off} (epoch {b[1]})")
                    continue
            if value in seen:
                n_dup += 1
                if n_dup <= 20:
                    violations.append(f"duplicate: {value} at partition {part} offsets "
                                      f"{seen[value]} and {off}")
            seen[value] = off
            try:
                seq = int(value.split(":")[1])
            except (IndexError, ValueError):
                violations.append(f"foreign record at partition {part} offset {off}: {value!r}")
                continue
            if key in last_seq and seq <= last_seq[key]:
                violations.append(f"reordered: producer {key} seq {seq} after {last_seq[key]} "
                                  f"at partition {part} offset {off}")
            last_seq[key] = seq
    return n_acked, n_lost, n_dup


def check_commits(samples, violations):
    """`samples`: [(ms, partition, committed offset)] in sampling order: never backwards."""
    last = {}
    for ms, part, off in samples:
        if off < 0:
            continue
        if part in last and off < last[part][1]:
            violations.append(f"committed offset of partition {part} moved back from "
                              f"{last[part][1]} to {off} (at {ms})")
        last[part] = (ms, off)


def check_transitions(transitions, violations):
    """`transitions`: {partition: [(zk_version, leader, leader_epoch, isr)]} as watched.
    A new leader must come from the ISR before it (no unclean election), and one epoch has one
    leader. Returns how many leader changes could be verified (no skipped znode versions)."""
    verified = 0
    for part, states in transitions.items():
        epoch_leader = {}
        for i, (ver, leader, epoch, isr) in enumerate(states):
            if leader >= 0:
                other = epoch_leader.setdefault(epoch, leader)
                if other != leader:
                    violations.append(f"partition {part}: leader epoch {epoch} had leaders "
                                      f"{other} and {leader}")
            if i == 0:
                continue
            pver, pleader, pepoch, pisr = states[i - 1]
            if leader >= 0 and leader != pleader and ver == pver + 1:
                verified += 1
                if leader not in pisr:
                    violations.append(f"partition {part}: unclean election of {leader} at epoch "
                                      f"{epoch}, previous ISR {pisr}")
            if epoch < pepoch:
                violations.append(f"partition {part}: leader epoch went back {pepoch} -> {epoch}")
    return verified


# ------------------------------------------------------------------ replicas on disk

def read_checkpoint(path):
    """Kafka's offset checkpoint text file: {(topic, partition): offset}."""
    out = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines[2:]:
        f = line.split()
        if len(f) == 3:
            out[(f[0], int(f[1]))] = int(f[2])
    return out


def read_batches(part_dir):
    """[(base_offset, last_offset, leader_epoch, crc)] of every batch in a partition dir."""
    batches = []
    for seg in sorted(glob.glob(os.path.join(part_dir, "*.log"))):
        with open(seg, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 27 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length < 14 or pos + 12 + length > len(data):
                break
            epoch, _magic, crc, _attrs, delta = struct.unpack_from(">ibIhi", data, pos + 12)
            batches.append((base, base + delta, epoch, crc))
            pos += 12 + length
    return batches


def read_producer_batches(part_dir):
    """[(base_offset, last_offset, producer_id, producer_epoch)] of a partition dir."""
    out = []
    for seg in sorted(glob.glob(os.path.join(part_dir, "*.log"))):
        with open(seg, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length < 49 or pos + 12 + length > len(data):
                break
            delta = struct.unpack_from(">i", data, pos + 23)[0]
            pid, pepoch = struct.unpack_from(">qh", data, pos + 43)
            out.append((base, base + delta, pid, pepoch))
            pos += 12 + length
    return out


def producer_lookup(part_dirs):
    """`part_dirs(partition)` -> the partition's dirs on disk; returns `producer_of` for
    check_records."""
    cache = {}

    def producer_of(part, off):
        if part not in cache:
            best = []
            for d in part_dirs(part):
                if os.path.isdir(d):
                    bs = read_producer_batches(d)
                    if len(bs) > len(best):
                        best = bs
            cache[part] = best
        for base, last, pid, pepoch in cache[part]:
            if base <= off <= last:
                return pid, pepoch
        return None
    return producer_of


def check_replicas(log_dirs, topic, partitions, min_end, violations):
    """Every replica of every partition holds the same batches up to the smallest log end, and
    that end covers every acknowledged offset (`min_end[p]`)."""
    for p in range(partitions):
        logs = {}
        for broker, d in log_dirs.items():
            pd = os.path.join(d, f"{topic}-{p}")
            if os.path.isdir(pd):
                logs[broker] = read_batches(pd)
        if len(logs) < 3:
            violations.append(f"partition {p}: replicas on disk only on brokers {sorted(logs)}")
        ends = {b: (bs[-1][1] + 1 if bs else 0) for b, bs in logs.items()}
        if not ends:
            continue
        common = min(ends.values())
        if common < min_end.get(p, 0):
            violations.append(f"partition {p}: a replica ends at {common} before acknowledged "
                              f"offset {min_end[p] - 1} (ends {ends})")
        views = {b: [x for x in bs if x[1] < common] for b, bs in logs.items()}
        ref_b, ref = next(iter(views.items()))
        for b, v in views.items():
            if v != ref:
                first = next((i for i, (x, y) in enumerate(zip(v, ref)) if x != y),
                             min(len(v), len(ref)))
                violations.append(
                    f"partition {p}: replicas {ref_b} and {b} differ below offset {common} "
                    f"at batch {first}: {ref[first:first + 1]} vs {v[first:first + 1]}")


def longest_gaps(acks):
    """{partition: sorted ack times}: for stall measurement."""
    times = defaultdict(list)
    for a in acks.values():
        for _seq, part, _off, ms in a["acked"]:
            times[part].append(ms)
    for t in times.values():
        t.sort()
    return times


def stall_in_window(times, start_ms, end_ms):
    """Longest gap between consecutive acks of any partition that began while the fault was
    being injected ([start, end]): the produce stall the fault caused. Gaps that began earlier
    belong to the fault before."""
    worst = 0
    for t in times.values():
        for prev, ms in zip(t, t[1:]):
            if start_ms <= prev <= end_ms:
                worst = max(worst, ms - prev)
    return worst


# ------------------------------------------------------------------ the transactional stage

def read_txn_logs(paths):
    """The stage's logs (drill/txn.py): ([{"kind": "T"|"A"|"U", "ms", "attempt", "records",
    "ranges": {partition: (first, next)}}], producers recreated)."""
    txns, recreated = [], 0
    for path in paths:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            f = line.split()
            if len(f) >= 4 and f[0] in ("T", "A", "U"):
                ranges = {}
                if len(f) >= 5 and f[4] != "-":
                    for span in f[4].split(","):
                        p, rng = span.split(":")
                        a, b = rng.split("-")
                        ranges[int(p)] = (int(a), int(b))
                txns.append({"kind": f[0], "ms": int(f[1]), "attempt": f[2],
                             "records": int(f[3]), "ranges": ranges})
            elif f and f[0] == "R":
                recreated += 1
    return txns, recreated


def check_eos(inputs, outputs, txns, committed, violations):
    """Exactly-once of the consume-transform-produce stage.

    `inputs`: {partition: {offset: (key, value)}} of the input topic; `outputs`: the same of the
    output topic read with read_committed, values `<attempt>|<in partition>|<in offset>|<value>`;
    `txns`: the stage's logged transactions; `committed`: {partition: the stage's group's final
    committed offset}. Proves: every input record below the committed offset is in the output
    exactly once and with its value, nothing at or past it is; a committed transaction is wholly
    visible, an aborted one not at all, one of unknown outcome all or nothing; the committed
    input ranges tile the input from 0 to the committed offset without overlap (the offsets
    committed with the output match it and never went back). Returns figures for the report."""
    n_bad = 0

    def bad(msg):
        nonlocal n_bad
        n_bad += 1
        if n_bad <= 20:
            violations.append(msg)

    seen = defaultdict(list)  # (in partition, in offset) -> [(out partition, out offset)]
    visible = defaultdict(int)  # attempt -> records visible
    for op, recs in outputs.items():
        last_in = {}
        for oo in sorted(recs):
            _key, value = recs[oo]
            try:
                attempt, ip, io, v = value.split("|", 3)
                ip, io = int(ip), int(io)
            except (AttributeError, ValueError):
                bad(f"eos: foreign output record at partition {op} offset {oo}: {value!r}")
                continue
            visible[attempt] += 1
            seen[(ip, io)].append((op, oo))
            want = inputs.get(ip, {}).get(io)
            if want is None or want[1] != v:
                bad(f"eos: output {op}@{oo} says input {ip}@{io} was {v!r}, input has {want!r}")
            if io >= committed.get(ip, 0):
                bad(f"eos: output {op}@{oo} holds input {ip}@{io}, at or past the committed "
                    f"offset {committed.get(ip, 0)}")
            if ip in last_in and io <= last_in[ip]:
                bad(f"eos: output partition {op} has input {ip}@{io} after {ip}@{last_in[ip]}")
            last_in[ip] = io
    dup = sum(len(v) - 1 for v in seen.values() if len(v) > 1)
    for (ip, io), where in sorted(seen.items()):
        if len(where) > 1:
            bad(f"eos: input {ip}@{io} is in the output {len(where)} times: {where}")
    missing = 0
    for ip, recs in inputs.items():
        for io in sorted(recs):
            if io < committed.get(ip, 0) and (ip, io) not in seen:
                missing += 1
                bad(f"eos: input {ip}@{io} is below the committed offset "
                    f"{committed[ip]} but not in the output")
    by_attempt = {}
    for t in txns:
        by_attempt[t["attempt"]] = t
        n = visible.get(t["attempt"], 0)
        if t["kind"] == "T" and n != t["records"]:
            bad(f"eos: committed transaction {t['attempt']} produced {t['records']} records, "
                f"{n} visible")
        elif t["kind"] == "A" and n:
            bad(f"eos: aborted transaction {t['attempt']} has {n} records visible")
        elif t["kind"] == "U" and n not in (0, t["records"]):
            bad(f"eos: transaction {t['attempt']} is partly visible ({n} of {t['records']})")
    for attempt, n in visible.items():
        if attempt not in by_attempt:
            bad(f"eos: {n} records visible from transaction {attempt}, which the stage never "
                "logged as ended")
    # Committed input ranges: from the committed transactions, and from the unknown-outcome
    # ones whose records are visible (they committed). They must tile [0, committed).
    spans = defaultdict(list)
    for t in txns:
        if t["kind"] == "T" or (t["kind"] == "U" and visible.get(t["attempt"])):
            for p, (a, b) in t["ranges"].items():
                spans[p].append((a, b, t["attempt"]))
    for p, ss in spans.items():
        ss.sort()
        pos = 0
        for a, b, attempt in ss:
            if a < pos:
                bad(f"eos: partition {p}: transaction {attempt} committed input [{a}, {b}) "
                    f"again (already committed up to {pos})")
            elif a > pos and any(pos <= o < a for o in inputs.get(p, {})):
                bad(f"eos: partition {p}: input [{pos}, {a}) was never committed by a logged "
                    f"transaction, yet {attempt} starts at {a}")
            pos = max(pos, b)
    for p in set(spans) | {p for p, o in committed.items() if o > 0}:
        pos = max((b for _a, b, _t in spans.get(p, [])), default=0)
        if pos != committed.get(p, 0):
            bad(f"eos: partition {p}: logged transactions committed up to {pos}, the group's "
                f"committed offset is {committed.get(p, 0)}")
    return {"txn_committed": sum(t["kind"] == "T" for t in txns),
            "txn_aborted": sum(t["kind"] == "A" for t in txns),
            "txn_unknown": sum(t["kind"] == "U" for t in txns),
            "eos_output": sum(visible.values()), "eos_duplicated": dup, "eos_missing": missing,
            "eos_violations": n_bad}
