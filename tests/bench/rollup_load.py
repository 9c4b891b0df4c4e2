"""Simulated deployments shipping rollups to a ClickHouse server (the load of
tests/bench/bench_rollup.sh).

usage: rollup_load.py PORT DATABASE COUNTS_TSV N DEPLOYMENTS PERIOD SECONDS WARMUP SERVER_PID

Each of DEPLOYMENTS deployments of a 58 x 256 model stepping 10 times a
second ships, every PERIOD seconds, the rollups of N steps it made since:
one row per layer and N steps holding the layer's summed counts, as
moetrace push sends rows (RowBinary over HTTP into `counts`, then the
`steps` rows that commit them).  N = 1 is full resolution.  The
deployments' sends are spread evenly over the period and made by 32
threads with a keep-alive connection each; a send not started by the end
is dropped.  Counts come from
COUNTS_TSV (a generated trace's rows: layer, then the counts as [a,b,...]),
summed N steps at a time.

Prints one line: the server's CPU seconds in the SECONDS after WARMUP
(utime + stime of SERVER_PID, every thread); the sends due in them, those
of them completed; the sends completed over the whole run; of the sends
due in the SECONDS, those started late (> 1 s after due) and those
failed; the first error.
"""
import http.client
import json
import os
import struct
import sys
import threading
import time

RATE = 10  # steps per second of every deployment
THREADS = 32


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rb_string(s):
    b = s.encode()
    return varint(len(b)) + b


def load_blocks(path, n):
    """The rows of consecutive N-step blocks: blocks[k][layer] = RowBinary tail
    (layer UInt16, counts Array(UInt32)) of the layer's sums over the block."""
    steps = {}
    order = []
    with open(path) as f:
        for line in f:
            step, layer, arr = line.rstrip("\n").split("\t")
            if step not in steps:
                steps[step] = {}
                order.append(step)
            steps[step][int(layer)] = json.loads(arr)
    layers = sorted(steps[order[0]])
    blocks = []
    for k in range(0, len(order) - n + 1, n):
        rows = []
        for layer in layers:
            tot = [0] * len(steps[order[k]][layer])
            for s in order[k:k + n]:
                for i, x in enumerate(steps[s][layer]):
                    tot[i] += x
            rows.append(struct.pack("<H", layer) + varint(len(tot)) +
                        struct.pack("<%dI" % len(tot), *tot))
        blocks.append(rows)
    return blocks


def main():
    port, db, tsv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    n, deps, period, secs, warm, pid = (int(a) for a in sys.argv[4:10])
    blocks = load_blocks(tsv, n)
    if (RATE * period) % n:
        sys.exit("rollup_load.py: PERIOD x %d steps/s must be whole rollups of N" % RATE)
    per_send = RATE * period // n  # rollup rows per layer in one send
    stats = {"due": 0, "made": 0, "all": 0, "late": 0, "failed": 0, "error": ""}
    lock = threading.Lock()
    t0 = time.monotonic() + 1.0
    t_end = t0 + warm + secs

    def worker(w):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = list(range(w, deps, THREADS))
        k = 0
        while mine:
            for d in mine:
                due = t0 + k * period + period * d / deps
                if due >= t_end:
                    return
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                start = time.monotonic()
                if start >= t_end:
                    return
                dep = rb_string("dep%03d" % d) + rb_string("r")
                counts, steps = [], []
                for j in range(per_send):
                    first = (k * per_send + j) * n
                    rows = blocks[(k * per_send + j) % len(blocks)]
                    head = dep + struct.pack("<q", first)
                    counts.extend(head + r for r in rows)
                    steps.append(head + struct.pack("<dBQ", 1.8e9 + first / RATE, 2, 4096 * n))
                ok, err = True, ""
                for table, body in (("counts", counts), ("steps", steps)):
                    try:
                        conn.request("POST", "/?database=%s&query=INSERT+INTO+%s+FORMAT+RowBinary"
                                     % (db, table), b"".join(body))
                        r = conn.getresponse()
                        text = r.read()
                        if r.status != 200:
                            ok, err = False, text.decode(errors="replace").splitlines()[0][:200]
                    except (OSError, http.client.HTTPException) as e:
                        ok, err = False, str(e)
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    if not ok:
                        break
                with lock:
                    stats["all"] += ok
                    if due >= t0 + warm:
                        stats["made"] += ok
                        stats["late"] += start - due > 1.0
                        stats["failed"] += not ok
                    if err and not stats["error"]:
                        stats["error"] = err
            k += 1

    def cpu():
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, t0 + warm - time.monotonic()))
    c0 = cpu()
    time.sleep(max(0.0, t_end - time.monotonic()))
    c1 = cpu()
    for t in threads:
        t.join()
    for d in range(deps):
        k = 0
        while t0 + k * period + period * d / deps < t_end:
            stats["due"] += t0 + k * period + period * d / deps >= t0 + warm
            k += 1
    if stats["error"]:
        print("rollup_load.py: first failed send: %s" % stats["error"], file=sys.stderr)
    print("%.2f" % (c1 - c0), stats["due"], stats["made"], stats["all"], stats["late"],
          stats["failed"], stats["error"] or "-",
          sep="\t")


if __name__ == "__main__":
    main()
