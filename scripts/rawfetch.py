"""Benchmark helper (scripts/bench-broker.sh): Fetch v4 of partition 0 from offset 0, built by
hand and repeated for SECONDS, draining each response into one buffer without parsing it. It
measures how fast the broker sends (sendfile) with no client-side record handling.
usage: rawfetch.py HOST:PORT TOPIC SECONDS -> prints "MB/s requests"."""
import socket, struct, sys, time
host, port = sys.argv[1].rsplit(":", 1)
topic, secs = sys.argv[2].encode(), float(sys.argv[3])
MAX = 64 << 20
def req(corr):
    body = struct.pack(">iiiib", -1, 0, 0, MAX, 0)  # replica, max_wait, min_bytes, max_bytes, isolation
    body += struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, MAX)  # partition 0 from offset 0
    hdr = struct.pack(">hhi", 1, 4, corr) + struct.pack(">h", 3) + b"raw"
    msg = hdr + body
    return struct.pack(">i", len(msg)) + msg
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
buf = bytearray(MAX + (1 << 20)); mv = memoryview(buf)
total, corr, t0 = 0, 0, time.monotonic()
while time.monotonic() - t0 < secs:
    corr += 1
    s.sendall(req(corr))
    n = 0
    while n < 4:
        n += s.recv_into(mv[n:4])
    size = struct.unpack(">i", buf[:4])[0]
    got = 0
    while got < size:
        got += s.recv_into(mv[:min(size - got, len(buf))])
    total += size + 4
el = time.monotonic() - t0
print(total / el / 1e6, corr)
