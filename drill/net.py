"""Hosts as network namespaces on one bridge, and the network faults between them.

Every host (ZooKeeper server, broker, the client) is a namespace `sdrill-<name>` whose `eth0` is a
veth plugged into a bridge that lives in a namespace of its own (`sdrill-sw`). Keeping the bridge
out of the root namespace keeps Docker's iptables FORWARD policy (and anything else the machine
runs) away from the drill's traffic. Addresses are 10.77.0.x/24 on that private bridge only: no
packet leaves these namespaces.

Faults are nft rules in the target host's namespace (drops, asymmetric drops, random loss) and a
`tbf` rate limit on its `eth0` (slow link). This kernel has no `sch_netem`, so delay and loss are
made with what it has: loss from nft's `numgen random`, delay from tbf queueing.
"""

import os
import subprocess

# DRILL_TAG (a digit, default 0) lets two drills run side by side: its own namespaces, veth names
# and subnet 10.77.<tag>.0/24.
TAG = os.environ.get("DRILL_TAG", "0")
if not (TAG.isdigit() and len(TAG) == 1):
    raise SystemExit("DRILL_TAG must be one digit")
PREFIX = "sdrill" if TAG == "0" else f"sdrill{TAG}"
SUBNET = f"10.77.{TAG}"
SWITCH = f"{PREFIX}-sw"


def run(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def ns(host):
    return f"{PREFIX}-{host}"


def existing_namespaces():
    out = run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX + "-")]


def teardown():
    """Deletes every drill namespace (their veths go with them)."""
    for n in existing_namespaces():
        run("ip", "netns", "del", n, check=False)


def setup(hosts):
    """`hosts`: {name: last address byte}. Returns {name: ip}."""
    teardown()
    run("ip", "netns", "add", SWITCH)
    run("ip", "-n", SWITCH, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", SWITCH, "link", "set", "br0", "up")
    ips = {}
    for i, (name, octet) in enumerate(sorted(hosts.items())):
        ip = f"{SUBNET}.{octet}"
        n = ns(name)
        run("ip", "netns", "add", n)
        # Interface names are at most 15 bytes; index-based names avoid collisions.
        a, b = f"sd{TAG}h{i}", f"sd{TAG}p{i}"
        run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        run("ip", "link", "set", a, "netns", n)
        run("ip", "link", "set", b, "netns", SWITCH)
        run("ip", "-n", SWITCH, "link", "set", b, "master", "br0", "up")
        run("ip", "-n", n, "link", "set", a, "name", "eth0")
        run("ip", "-n", n, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", n, "link", "set", "eth0", "up")
        run("ip", "-n", n, "link", "set", "lo", "up")
        # One table per host for the fault rules, flushed by heal().
        nft(name, "add table inet drill")
        nft(name, "add chain inet drill in { type filter hook input priority 0; }")
        nft(name, "add chain inet drill out { type filter hook output priority 0; }")
        ips[name] = ip
    return ips


def nft(host, rule):
    run("ip", "netns", "exec", ns(host), "nft", *rule.split())


def heal(host):
    """Removes every fault from one host: nft rules and the link rate limit."""
    nft(host, "flush chain inet drill in")
    nft(host, "flush chain inet drill out")
    run("ip", "-n", ns(host), "link", "set", "eth0", "up")
    run("ip", "netns", "exec", ns(host), "tc", "qdisc", "del", "dev", "eth0", "root", check=False)


def drop_between(host, peer_ips, direction="both"):
    """Drops packets between `host` and `peer_ips` (both ways, or only 'out' / 'in')."""
    for ip in peer_ips:
        if direction in ("both", "out"):
            nft(host, f"add rule inet drill out ip daddr {ip} drop")
        if direction in ("both", "in"):
            nft(host, f"add rule inet drill in ip saddr {ip} drop")


def random_loss(host, percent):
    """Drops `percent`% of the host's packets each way, at random."""
    for chain in ("in", "out"):
        nft(host, f"add rule inet drill {chain} iifname != lo numgen random mod 100 < {percent} drop"
            if chain == "in" else
            f"add rule inet drill {chain} oifname != lo numgen random mod 100 < {percent} drop")


def slow_link(host, rate="2mbit", latency="300ms"):
    """A token-bucket rate limit on the host's egress: queueing adds up to `latency` of delay."""
    run("ip", "netns", "exec", ns(host), "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
        "rate", rate, "burst", "32kbit", "latency", latency)
