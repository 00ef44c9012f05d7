#!/usr/bin/env python3
"""Rolling-upgrade drill: an earlier Samsa build upgraded broker by broker under load, then
downgraded and upgraded again, then the inter.broker.protocol.version bump.

    sudo python3 drill/upgrade.py                      # from the first commit of last month
    sudo python3 drill/upgrade.py --from 15ab4e3       # from a given commit

The earlier build is made from a git worktree of that commit into target/drill-old/<commit>/
(kept for the next run). The cluster (the same hosts as drill.py) starts on the earlier build with
`inter.broker.protocol.version=3.8-IV0`, as Kafka's upgrade notes say to pin it first. Steps, each
broker in turn with a controlled shutdown (SIGTERM), under idempotent acks=all load:
  1. upgrade every broker to the current build (protocol still 3.8-IV0);
  2. downgrade every broker to the earlier build (allowed: the protocol was not bumped);
  3. upgrade again;
  4. bump inter.broker.protocol.version to 3.9-IV0, one rolling restart.
Then the drill's checker runs (no acknowledged record lost or duplicated, clean elections,
identical replicas) and the longest produce stall of each step is printed.
"""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import check  # noqa: E402
import drill  # noqa: E402
import net  # noqa: E402

OLD_IBP = "3.8-IV0"
NEW_IBP = "3.9-IV0"


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def default_from_commit():
    """The first commit of the previous calendar month, else the repository's first commit."""
    today = datetime.date.today()
    first = today.replace(day=1)
    prev = (first - datetime.timedelta(days=1)).replace(day=1)
    commits = git("log", "--reverse", "--format=%H", f"--since={prev.isoformat()}",
                  f"--until={first.isoformat()}").split()
    return commits[0] if commits else git("rev-list", "--max-parents=0", "HEAD").split()[0]


def build_old(commit):
    """Builds samsa-broker at `commit` into target/drill-old/<commit>/ and returns its path."""
    full = git("rev-parse", commit)
    out = os.path.join(ROOT, "target", "drill-old", full[:12])
    binary = os.path.join(out, "debug", "samsa-broker")
    if os.path.exists(binary):
        return full, binary
    src = os.path.join(ROOT, "target", "drill-old", f"src-{full[:12]}")
    shutil.rmtree(src, ignore_errors=True)
    subprocess.run(["git", "-C", ROOT, "worktree", "prune"], check=False)
    git("worktree", "add", "--detach", src, full)
    try:
        drill.log(f"building samsa-broker at {full[:12]} (once; kept in {out})")
        subprocess.run(["cargo", "build", "-p", "samsa-broker", "--target-dir", out], cwd=src,
                       check=True)
    finally:
        git("worktree", "remove", "--force", src)
    return full, binary


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="from_commit", default=None)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "debug", "samsa-broker"))
    ap.add_argument("--old-bin", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", default=os.path.join(ROOT, "target", "drill", "upgrade"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if os.geteuid() != 0:
        sys.exit("upgrade: needs root (network namespaces)")
    if not args.inner:
        commit, old_bin = build_old(args.from_commit or default_from_commit())
        shutil.rmtree(args.run_dir, ignore_errors=True)
        os.makedirs(args.run_dir)
        hosts = {f"zk{i}": 10 + i for i in (1, 2, 3)}
        hosts.update({f"b{i}": 20 + i for i in (1, 2, 3)})
        hosts["client"] = 100
        net.setup(hosts)
        argv = [sys.executable, os.path.abspath(__file__), "--inner", "--old-bin", old_bin,
                "--from", commit] + [a for a in sys.argv[1:]
                                     if a not in ("--from",) and a != args.from_commit]
        code = drill.run_inner(["ip", "netns", "exec", net.ns("client")] + argv)
        if code == 0 and not args.keep:
            shutil.rmtree(args.run_dir, ignore_errors=True)
        sys.exit(code)

    import logging
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    drill.stop_on_sigterm()
    dargs = argparse.Namespace(seed=0, profile="upgrade", brokers=3, bin=args.old_bin,
                               run_dir=args.run_dir, keep=args.keep)
    prof = dict(drill.PROFILES["full"])
    d = drill.Drill(dargs, prof)
    d.broker_props = {"inter.broker.protocol.version": OLD_IBP}
    steps = []
    code = 0
    try:
        try:
            d.setup_inner()
        except Exception as e:
            drill.log(f"setup failed: {e}")
            return 2
        threading.Thread(target=d.monitor, daemon=True).start()
        d.start_load()
        time.sleep(3)  # records flowing before the first step (not a wait for a condition)

        def roll(name, binary=None, ibp=None):
            for i, b in d.brokers.items():
                start = int(time.time() * 1000)
                drill.log(f"{name}: broker {i}")
                if binary:
                    b.binary = binary
                if ibp:
                    b.set_prop("inter.broker.protocol.version", ibp)
                code = b.terminate()
                if code != 0:
                    d.violations.append(f"{name}: broker {i} exited with {code} on SIGTERM")
                d.restart(b)
                d.wait(d.all_converged, f"full ISRs after {name} of broker {i}",
                       prof["settle"] * 2)
                steps.append({"step": f"{name} broker {i}", "kind": name,
                              "window": (start, int(time.time() * 1000))})

        roll("upgrade", binary=args.bin)
        roll("downgrade", binary=args.old_bin)
        roll("re-upgrade", binary=args.bin)
        roll("protocol-bump", ibp=NEW_IBP)
        d.faults_done = steps
        result = d.finish(None)
        gaps = check.longest_gaps(check.read_acks(
            {pid: out for pid, (_p, out) in d.producers.items()}))
        print()
        print(f"rolling upgrade from {args.from_commit[:12]} to the current build")
        print(f"{'step':28} {'longest produce stall ms':>25}")
        for s in steps:
            print(f"{s['step']:28} {check.stall_in_window(gaps, *s['window']):>25}")
        print(f"records acknowledged {result['acked']}, lost {result['lost']}, duplicated "
              f"{result['duplicated']}")
        if d.violations:
            print(f"VIOLATIONS ({len(d.violations)}):")
            for v in d.violations[:50]:
                print(f"  - {v}")
        else:
            print("no violations")
        code = 1 if d.violations else 0
    finally:
        d.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
