#!/bin/sh
# The replay's realised per-step imbalance against the clairvoyant figure:
# each interval served by a placement the same algorithm fitted on that
# very interval (which no deployment can have).
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
steps=400 every=50
"$MOETRACE" gen --model deepseek-v3 --steps $steps --seed 1 -q "$d/t.db"
echo "## Replay against the clairvoyant placement"
echo
echo "A generated DeepSeek-V3 trace (\`moetrace gen --model deepseek-v3 --steps $steps --seed 1\`,"
echo "58 x 256 at 64 x 5), re-placed every $every steps on the last $every steps, in force at once"
echo "(\`--delay 0\`). Realised = the replay's mean over steps of the per-step imbalance (sum of max"
echo "/ sum of mean device load over layers); clairvoyant = the same algorithm with the same episodes"
echo "fitted on each interval itself and scored on it. Both over steps $every..$((steps - 1)) (the first"
echo "interval has no window yet)."
echo
echo "| replay | episodes | realised | clairvoyant | realised / clairvoyant | copies |"
echo "|---|---:|---:|---:|---:|---:|"
"$MOETRACE" export "$d/t.db" --format jsonl -o "$d/t.jsonl" >/dev/null
for ep in 0 $every; do
	"$MOETRACE" replay "$d/t.db" --algo keel --interval $every --window $every --delay 0 \
		--start static --episodes $ep --json >"$d/r.json"
	id=$("$MOETRACE" replays "$d/t.db" | awk 'NR > 1 { id = $1 } END { print id }')
	"$MOETRACE" sql "$d/t.db" --format csv "select step, sum(max_load) / sum(mean_load) from replay_steps
		where replay = $id and step >= $every group by step order by step" >"$d/real.csv"
	mv=$(sed -n 's/.*"events": [0-9]*, "moves": \([0-9]*\).*/\1/p' "$d/r.json" | head -1)
	k=1
	: >"$d/oracle.list"
	while [ $((k * every)) -lt $steps ]; do
		a=$((k * every)); b=$((a + every - 1))
		"$MOETRACE" place "$d/t.db" --algo keel --steps $a:$b --episodes $ep --json \
			>"$d/p$k.json"
		echo "$a $b $d/p$k.json" >>"$d/oracle.list"
		k=$((k + 1))
	done
	python3 - "$d/t.jsonl" "$d/oracle.list" "$d/real.csv" "$ep" "$mv" <<'PY'
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
head, steps = rows[0], {r["step"]: r["counts"] for r in rows[1:]}
R, S = head["ranks"], head["slots"]
oracle = []
for line in open(sys.argv[2]):
    a, b, f = line.split()
    pl = [l["phy2log"] for l in json.load(open(f))["layers"]]
    cnts = []
    for p in pl:
        c = {}
        for e in p:
            c[e] = c.get(e, 0) + 1
        cnts.append(c)
    for s in range(int(a), int(b) + 1):
        mx = mn = 0
        for l, h in enumerate(steps[s]):
            p, c = pl[l], cnts[l]
            load = [sum(h[p[r * S + j]] / c[p[r * S + j]] for j in range(S)) for r in range(R)]
            mx += max(load); mn += sum(load) / R
        oracle.append(mx / mn)
real = [float(r[1]) for r in csv.reader(open(sys.argv[3])) if r and r[0] != "step"]
ro, rr = sum(oracle) / len(oracle), sum(real) / len(real)
print("| keel | %s | %.4f | %.4f | %.3f | %s |" % (sys.argv[4], rr, ro, rr / ro, sys.argv[5]))
PY
done
echo
echo "A replay decides on the steps before an interval and is scored on the interval; the"
echo "clairvoyant placement is fitted on the interval itself. With per-step episodes the replay"
echo "is the best realised figure, but it stays about 20% above its clairvoyant one (the goal was"
echo "within 10%): at 64 x 5 a 50-step interval of generated DeepSeek-V3 heat drifts and carries"
echo "sampling noise no placement decided before it can see. The summed heat's clairvoyant figure is"
echo "itself far worse per step (a placement fitted on 50 steps' sum is not fitted on each step)."
