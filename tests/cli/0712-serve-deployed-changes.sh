#!/bin/sh
# serve's EP-rank counters credit each step under the placement deployed at
# that step when the deployed placement changes during the run (serve now
# looks the placement up once per change): each rank's tokens equal a sum
# computed here from expert_heat and the deployed rows, also for rows
# recorded after serve started and taking effect at steps it has read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prom.sh"

expect_status 0 mt gen --model mixtral-8x7b --steps 120 --seed 4 -q "$T/t.db"
# placements (4 ranks x 3 slots, 8 experts) in force from steps 0, 40, 41, 90
python3 - "$T/t.db" 0 40 41 90 <<'PY'
import sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
run = db.execute("SELECT run FROM runs").fetchone()[0]
for k, step in enumerate(int(a) for a in sys.argv[2:]):
    for layer in range(32):
        # every expert once, then four replicas chosen by step and layer
        p2l = [(e + k + layer) % 8 for e in range(8)] + [(k * 3 + layer + j) % 8 for j in range(4)]
        db.execute("INSERT INTO deployed VALUES (?, ?, ?, 4, 3, ?)",
                   (run, step, layer, struct.pack("<12i", *p2l)))
db.commit()
PY

# expected FILE: per (layer, rank) tokens from expert_heat and the deployed rows
check() {
	mt sql --format csv "$T/t.db" "SELECT step, layer, expert, tokens FROM expert_heat" >"$T/heat.csv" ||
		fail "cannot read expert_heat"
	python3 - "$T/t.db" "$1" "$T/heat.csv" <<'PY' || fail "serve's EP-rank counters differ from the deployed placements ($1)"
import sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
m = {}
for line in open(sys.argv[2]):
    if line.startswith("moetrace_ep_rank_tokens_total{"):
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
rows = db.execute("SELECT step, layer, phy2log FROM deployed ORDER BY step").fetchall()
last = int(db.execute("SELECT max(step) FROM steps").fetchone()[0])
want = {}
for line in open(sys.argv[3]).read().split()[1:]:
    step, layer, e, tok = (int(x) for x in line.split(","))
    p2l = [struct.unpack("<12i", b) for s, l, b in rows if l == layer and s <= step][-1]
    reps = [p2l.count(x) for x in range(8)]
    for slot, x in enumerate(p2l):
        if x == e:
            key = 'moetrace_ep_rank_tokens_total{layer="%d",ep_rank="%d"}' % (layer, slot // 3)
            want[key] = want.get(key, 0.0) + tok / reps[e]
bad = [(k, m.get(k), v) for k, v in want.items() if abs(m.get(k, -1) - v) > 1e-6 * max(1, v)]
for b in bad[:5]:
    print("%s: serve %s, expected %s" % b)
sys.exit(1 if bad or len(m) != 32 * 4 else 0)
PY
}
expect_status 0 mt serve --once "$T/t.db"
expect_grep "$T/out" '^moetrace_deployed_placement 1$'
cp "$T/out" "$T/m1"
check "$T/m1"

# a running server: a placement recorded later, in force from a step it has
# read already and from a step still to come
"$MOETRACE" serve --listen 127.0.0.1:0 "$T/t.db" >"$T/serve.out" 2>"$T/serve.err" &
pids="$pids $!"
port=$(wait_port "$T/serve.out")
http GET "http://127.0.0.1:$port/metrics" | tail -n +2 >"$T/h1"
check "$T/h1"
run=$(mt sql --format csv "$T/t.db" "SELECT name FROM runs" | tail -n 1)
python3 - "$T/t.db" 130 <<'PY'
import sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
run = db.execute("SELECT run FROM runs").fetchone()[0]
for layer in range(32):
    p2l = [(7 - e + layer) % 8 for e in range(8)] + [layer % 8, (layer + 5) % 8, 1, 2]
    db.execute("INSERT INTO deployed VALUES (?, ?, ?, 4, 3, ?)",
               (run, int(sys.argv[2]), layer, struct.pack("<12i", *p2l)))
db.commit()
PY
expect_status 0 mt record --model mixtral-8x7b --steps 30 --seed 8 --block --append --run "$run" "$T/t.db"
i=0
until http GET "http://127.0.0.1:$port/metrics" | tail -n +2 >"$T/h2" &&
	grep -q '^moetrace_steps_total 150$' "$T/h2"; do
	i=$((i + 1)); [ $i -lt 1200 ] || fail "serve did not follow the appended steps"
	sleep 0.1
done
check "$T/h2"
exit 0
