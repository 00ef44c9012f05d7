"""Unit tests of the drill's checker: each check must catch the violation it exists for."""

import os
import struct
import tempfile
import unittest
import zlib

import check


def acks(*entries):
    return {"p0": {"acked": list(entries), "failed": 0, "fatal": []}}


class Records(unittest.TestCase):
    def test_all_present_passes(self):
        v = []
        r = check.check_records(acks((0, 0, 0, 1), (1, 0, 1, 2)),
                                {0: {0: ("p0", "p0:0"), 1: ("p0", "p0:1")}}, v)
        self.assertEqual(r, (2, 0, 0))
        self.assertEqual(v, [])

    def test_lost_and_overwritten_records_are_caught(self):
        v = []
        r = check.check_records(acks((0, 0, 0, 1), (1, 0, 1, 2)),
                                {0: {0: ("p0", "p0:0"), 1: ("p0", "p0:7")}}, v)
        self.assertEqual(r[1], 1)
        self.assertIn("lost: p0:1", v[0])

    def test_ack_without_offset_is_found_by_value(self):
        v = []
        stored = {0: {0: ("p0", "p0:0"), 1: ("p0", "p0:1")}}
        r = check.check_records(acks((1, 0, -1, 2)), stored, v)
        self.assertEqual((r, v), ((1, 0, 0), []))
        r = check.check_records(acks((2, 0, -1, 2)), stored, v)
        self.assertEqual(r[1], 1)

    def test_duplicates_and_reordering_are_caught(self):
        v = []
        stored = {0: {0: ("p0", "p0:0"), 1: ("p0", "p0:2"), 2: ("p0", "p0:1"), 3: ("p0", "p0:2")}}
        _a, _l, dup = check.check_records(acks(), stored, v)
        self.assertEqual(dup, 1)
        self.assertTrue(any(x.startswith("reordered") for x in v))


    def test_copy_under_a_new_producer_epoch_is_the_clients(self):
        stored = {0: {0: ("p0", "p0:0"), 1: ("p0", "p0:1"), 2: ("p0", "p0:1")}}
        epochs = {0: (7, 0), 1: (7, 0), 2: (7, 1)}
        v, resent = [], []
        _a, _l, dup = check.check_records(acks(), stored, v, lambda p, o: epochs[o], resent)
        self.assertEqual((dup, v, len(resent)), (0, [], 1))
        # The same copy within one epoch is the broker's: a violation.
        epochs[2] = (7, 0)
        v, resent = [], []
        _a, _l, dup = check.check_records(acks(), stored, v, lambda p, o: epochs[o], resent)
        self.assertEqual((dup, resent), (1, []))
        self.assertTrue(any(x.startswith("duplicate: p0:1") for x in v), v)

    def test_producer_epochs_are_read_from_disk(self):
        with tempfile.TemporaryDirectory() as root:
            d = os.path.join(root, "t-0")
            os.makedirs(d)
            body = struct.pack(">ibIhiqqqhii", 0, 2, 0, 0, 1, 0, 0, 42, 3, 0, 2)
            with open(os.path.join(d, "00000000000000000000.log"), "wb") as f:
                f.write(struct.pack(">qi", 5, len(body)) + body)
            self.assertEqual(check.read_producer_batches(d), [(5, 6, 42, 3)])
            lookup = check.producer_lookup(lambda p: [d])
            self.assertEqual((lookup(0, 6), lookup(0, 7)), ((42, 3), None))


class Commits(unittest.TestCase):
    def test_backwards_commit_is_caught(self):
        v = []
        check.check_commits([(1, 0, 5), (2, 0, 9), (3, 0, 9), (4, 0, 7)], v)
        self.assertEqual(len(v), 1)
        self.assertIn("moved back from 9 to 7", v[0])


class Elections(unittest.TestCase):
    def test_clean_election_passes_and_unclean_is_caught(self):
        v = []
        n = check.check_transitions({0: [(0, 1, 0, (1, 2, 3)), (1, 1, 0, (1, 2)),
                                         (2, 2, 1, (2,))]}, v)
        self.assertEqual((n, v), (1, []))
        check.check_transitions({0: [(0, 1, 0, (1, 2)), (1, 3, 1, (3,))]}, v)
        self.assertIn("unclean election of 3", v[0])

    def test_two_leaders_in_one_epoch_are_caught(self):
        v = []
        check.check_transitions({0: [(0, 1, 4, (1, 2)), (2, 2, 4, (2,))]}, v)
        self.assertIn("leader epoch 4 had leaders 1 and 2", v[0])


def batch(base, count, epoch, payload=b"x"):
    """A minimal magic-2 batch header plus payload (only the fields the checker reads)."""
    body = struct.pack(">ibIhi", epoch, 2, zlib.crc32(payload + bytes([epoch])), 0, count - 1)
    body += payload
    return struct.pack(">qi", base, len(body)) + body


class Replicas(unittest.TestCase):
    def write(self, root, broker, batches):
        d = os.path.join(root, str(broker), "t-0")
        os.makedirs(d)
        with open(os.path.join(d, "00000000000000000000.log"), "wb") as f:
            f.write(b"".join(batches))
        return os.path.join(root, str(broker))

    def test_identical_replicas_pass_and_divergence_is_caught(self):
        with tempfile.TemporaryDirectory() as root:
            same = [batch(0, 2, 0), batch(2, 3, 1)]
            dirs = {b: self.write(root, b, same) for b in (1, 2)}
            dirs[3] = self.write(root, 3, [batch(0, 2, 0), batch(2, 3, 2, b"y")])
            v = []
            check.check_replicas({1: dirs[1], 2: dirs[2]}, "t", 1, {0: 5}, v)
            self.assertEqual([x for x in v if "differ" in x or "ends" in x], [])
            v = []
            check.check_replicas(dirs, "t", 1, {0: 5}, v)
            self.assertTrue(any("differ" in x for x in v), v)

    def test_short_replica_is_caught(self):
        with tempfile.TemporaryDirectory() as root:
            dirs = {1: self.write(root, 1, [batch(0, 2, 0), batch(2, 3, 1)]),
                    2: self.write(root, 2, [batch(0, 2, 0)]),
                    3: self.write(root, 3, [batch(0, 2, 0), batch(2, 3, 1)])}
            v = []
            check.check_replicas(dirs, "t", 1, {0: 5}, v)
            self.assertTrue(any("before acknowledged offset 4" in x for x in v), v)


class Stalls(unittest.TestCase):
    def test_gap_that_began_during_the_fault_counts(self):
        times = {0: [0, 10, 20, 1020, 1030], 1: [0, 500, 510]}
        self.assertEqual(check.stall_in_window(times, 15, 100), 1000)
        self.assertEqual(check.stall_in_window(times, 1025, 2000), 0)


def txn(kind, attempt, records, ranges):
    return {"kind": kind, "ms": 0, "attempt": attempt, "records": records, "ranges": ranges}


class ExactlyOnce(unittest.TestCase):
    """The transactional stage: input partition 0 has offsets 0-3; transaction a committed 0-1,
    b was aborted after producing 2-3, c committed 2-3."""
    inputs = {0: {o: ("p0", f"p0:{o}") for o in range(4)}}
    txns = [txn("T", "a", 2, {0: (0, 2)}), txn("A", "b", 2, {0: (2, 4)}),
            txn("T", "c", 2, {0: (2, 4)})]

    def out(self, *entries):
        return {0: {i: ("p0", f"{att}|0|{o}|p0:{o}") for i, (att, o) in enumerate(entries)}}

    def run_check(self, outputs, txns=None, committed=None):
        v = []
        r = check.check_eos(self.inputs, outputs, self.txns if txns is None else txns,
                            {0: 4} if committed is None else committed, v)
        return r, v

    def test_exactly_once_passes(self):
        r, v = self.run_check(self.out(("a", 0), ("a", 1), ("c", 2), ("c", 3)))
        self.assertEqual(v, [])
        self.assertEqual((r["txn_committed"], r["txn_aborted"], r["eos_output"]), (2, 1, 4))

    def test_duplicate_is_caught(self):
        r, v = self.run_check(self.out(("a", 0), ("a", 1), ("c", 2), ("c", 3), ("c", 3)))
        self.assertEqual(r["eos_duplicated"], 1)
        self.assertTrue(any("is in the output 2 times" in x for x in v), v)

    def test_missing_record_is_caught(self):
        r, v = self.run_check(self.out(("a", 0), ("a", 1), ("c", 3)))
        self.assertEqual(r["eos_missing"], 1)
        self.assertTrue(any("input 0@2 is below the committed offset 4" in x for x in v), v)
        self.assertTrue(any("committed transaction c produced 2 records, 1 visible" in x
                            for x in v), v)

    def test_aborted_output_visible_is_caught(self):
        _r, v = self.run_check(self.out(("a", 0), ("a", 1), ("b", 2), ("b", 3)))
        self.assertTrue(any("aborted transaction b has 2 records visible" in x for x in v), v)

    def test_output_past_the_committed_offset_is_caught(self):
        _r, v = self.run_check(self.out(("a", 0), ("a", 1), ("c", 2), ("c", 3)),
                               committed={0: 2})
        self.assertTrue(any("at or past the committed offset 2" in x for x in v), v)
        self.assertTrue(any("committed up to 4, the group's committed offset is 2" in x
                            for x in v), v)

    def test_offsets_committed_twice_are_caught(self):
        txns = [txn("T", "a", 2, {0: (0, 2)}), txn("T", "c", 3, {0: (1, 4)})]
        _r, v = self.run_check(self.out(("a", 0), ("a", 1), ("c", 1), ("c", 2), ("c", 3)),
                               txns=txns)
        self.assertTrue(any("committed input [1, 4) again" in x for x in v), v)

    def test_wrong_value_and_unlogged_transaction_are_caught(self):
        outputs = self.out(("a", 0), ("a", 1), ("c", 2), ("z", 3))
        outputs[0][1] = ("p0", "a|0|1|p0:9")
        _r, v = self.run_check(outputs)
        self.assertTrue(any("input has ('p0', 'p0:1')" in x for x in v), v)
        self.assertTrue(any("transaction z, which the stage never logged" in x for x in v), v)

    def test_unknown_outcome_is_all_or_nothing(self):
        txns = [txn("T", "a", 2, {0: (0, 2)}), txn("U", "u", 2, {0: (2, 4)})]
        _r, v = self.run_check(self.out(("a", 0), ("a", 1), ("u", 2), ("u", 3)), txns=txns)
        self.assertEqual(v, [])
        _r, v = self.run_check(self.out(("a", 0), ("a", 1), ("u", 2)), txns=txns)
        self.assertTrue(any("partly visible (1 of 2)" in x for x in v), v)

    def test_txn_log_is_parsed(self):
        with tempfile.TemporaryDirectory() as root:
            path = os.path.join(root, "txn.log")
            with open(path, "w") as f:
                f.write("T 5 t.1.1 3 0:0-2,1:7-8\nA 6 t.1.2 1 1:8-9 abortable:X\n"
                        "U 7 t.1.3 0 - fatal:Y\nR 8 Y\n")
            txns, recreated = check.read_txn_logs([path])
        self.assertEqual(recreated, 1)
        self.assertEqual([t["kind"] for t in txns], ["T", "A", "U"])
        self.assertEqual(txns[0]["ranges"], {0: (0, 2), 1: (7, 8)})
        self.assertEqual(txns[2]["ranges"], {})


if __name__ == "__main__":
    unittest.main()
