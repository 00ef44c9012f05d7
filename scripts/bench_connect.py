#!/usr/bin/env python3
"""New-connection rate against one listener (used by scripts/bench-security.sh).

    bench_connect.py MODE HOST:PORT SECONDS WORKERS [CA USER PASSWORD]

MODE is `tls` (TLS handshake, then one ApiVersions v0 round trip) or `scram` (TLS handshake,
SaslHandshake v1 and a SCRAM-SHA-512 exchange through SaslAuthenticate v1). Each of WORKERS
processes opens, uses and closes connections one after the other for SECONDS; prints the
total number of completed connections. The client keeps the salted password after the first
login, as a real client pays PBKDF2 once, so the figure measures the broker, not the client.
"""
import base64
import hashlib
import hmac
import multiprocessing
import os
import socket
import ssl
import struct
import sys
import time


def frame(api_key, version, corr, body):
    client_id = b"bench"
    hdr = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    msg = hdr + body
    return struct.pack(">i", len(msg)) + msg


def read_frame(s):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    (n,) = struct.unpack(">i", exact(4))
    return exact(n)


def kstr(b):
    return struct.pack(">h", len(b)) + b


def kbytes(b):
    return struct.pack(">i", len(b)) + b


def authenticate(s, corr, token):
    s.sendall(frame(36, 1, corr, kbytes(token)))
    r = read_frame(s)[4:]
    (err,) = struct.unpack(">h", r[:2])
    (mlen,) = struct.unpack(">h", r[2:4])
    off = 4 + max(mlen, 0)
    if err != 0:
        raise RuntimeError(f"SaslAuthenticate error {err}: {r[4:off]!r}")
    (blen,) = struct.unpack(">i", r[off:off + 4])
    return r[off + 4:off + 4 + blen]


SALTED = {}


def scram(s, user, password):
    s.sendall(frame(17, 1, 1, kstr(b"SCRAM-SHA-512")))
    r = read_frame(s)[4:]
    if struct.unpack(">h", r[:2])[0] != 0:
        raise RuntimeError("SaslHandshake refused")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    server_first = authenticate(s, 2, ("n,," + first_bare).encode()).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    key = (attrs["s"], attrs["i"])
    if key not in SALTED:
        SALTED[key] = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    salted = SALTED[key]
    final_bare = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_bare}".encode()
    client_key = hmac.new(salted, b"Client Key", hashlib.sha512).digest()
    stored = hashlib.sha512(client_key).digest()
    sig = hmac.new(stored, auth_msg, hashlib.sha512).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    final = f"{final_bare},p={base64.b64encode(proof).decode()}".encode()
    server_final = authenticate(s, 3, final).decode()
    if not server_final.startswith("v="):
        raise RuntimeError(server_final)


def worker(args):
    mode, host, port, seconds, ca, user, password = args
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        raw = socket.create_connection((host, port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw) as s:
            if mode == "tls":
                s.sendall(frame(18, 0, 1, b""))
                read_frame(s)
            else:
                scram(s, user, password)
        n += 1
    return n


def main():
    mode, addr, seconds, workers = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    ca, user, password = (sys.argv[5:8] + [None, None, None])[:3]
    host, port = addr.rsplit(":", 1)
    with multiprocessing.Pool(workers) as pool:
        counts = pool.map(worker, [(mode, host, int(port), seconds, ca, user, password)] * workers)
    print(sum(counts))


if __name__ == "__main__":
    main()
