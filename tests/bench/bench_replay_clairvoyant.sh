#!/bin/sh
# The replay's realised per-step imbalance against the clairvoyant figure:
# each interval served by a placement the same algorithm fitted on that
# very interval (which no deployment can have).
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
steps=400 every=50
echo "## Replay against the clairvoyant placement"
echo
echo "A generated DeepSeek-V3 trace (\`moetrace gen --model deepseek-v3 --steps $steps --seed 1\`,"
echo "58 x 256 at 64 x 5), re-placed every $every steps on the last $every steps, in force at once"
echo "(\`--delay 0\`). Realised = the replay's mean over steps of the per-step imbalance (sum of max"
echo "/ sum of mean device load over layers); clairvoyant = the same algorithm with the same episodes"
echo "fitted on each interval itself and scored on it. Both over steps $every..$((steps - 1)) (the first"
echo "interval has no window yet). Twice: with the generator's default decode batch (128"
echo "sequences) and with \`--decode-batch 2048\`, closer to a loaded deployment of this size."
# oracles PHASE EP: the clairvoyant placements (oracle.list): keel with EP
# episodes fitted on each interval's own steps of PHASE, interval k the
# ordinals k x every .. (k + 1) x every - 1 of those steps, k >= 1 (the
# first has no window yet), whole intervals only
oracles() {
	where= phs=
	[ $1 = decode ] && phs="--phase decode" where="where phase = 2"
	"$MOETRACE" sql "$d/t.db" --format csv "select step from steps $where order by step" |
		tail -n +2 >"$d/ids"
	n=$(wc -l <"$d/ids")
	: >"$d/oracle.list"
	k=1
	while [ $(((k + 1) * every)) -le $n ]; do
		a=$(sed -n "$((k * every + 1))p" "$d/ids")
		b=$(sed -n "$(((k + 1) * every))p" "$d/ids")
		"$MOETRACE" place "$d/t.db" --algo keel --steps $a:$b --episodes $2 $phs \
			--current none --json >"$d/p$k.json"
		echo "$a $b $d/p$k.json" >>"$d/oracle.list"
		k=$((k + 1))
	done
}
# replay_row PHASE EP: one row of a table: the replay on the steps of PHASE
# (all; or decode, `--phase decode`: prefill served elsewhere) with EP
# episodes (forecast: the replay's default), against the clairvoyant figure:
# the same episodes fitted on each interval's own steps of PHASE.  The
# forecast row is scored against the oracles of the row before ($every).
replay_row() {
	ph=$1 ep=$2
	eps="--episodes $ep" phs=
	[ $ep = forecast ] && eps=
	[ $ph = decode ] && phs="--phase decode"
	cp "$d/t.db" "$d/w.db"
	"$MOETRACE" replay "$d/w.db" --algo keel --interval $every --window $every --delay 0 \
		--start static $eps $phs --json >"$d/r.json"
	"$MOETRACE" sql "$d/w.db" --format csv "select step, sum(max_load) / sum(mean_load)
		from replay_steps group by step order by step" >"$d/real.csv"
	mv=$(sed -n 's/.*"events": [0-9]*, "moves": \([0-9]*\).*/\1/p' "$d/r.json" | head -1)
	[ $ep = forecast ] || oracles $ph $ep
	# (into a file first: sh has no pipefail, and a failed row must stop
	# the bench rather than leave a gap the paragraphs below would read)
	python3 - "$d/t.jsonl" "$d/oracle.list" "$d/real.csv" "$ep" "$mv" "$ph" "$d/n.$ph" \
		<<'PY' >"$d/row"
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
head, steps = rows[0], {r["step"]: r["counts"] for r in rows[1:]}
phase = {r["step"]: r["phase"] for r in rows[1:]}
R, S = head["ranks"], head["slots"]
want = sys.argv[6]
oracle = {}
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
        if want != "all" and phase[s] != want:
            continue
        mx = mn = 0
        for l, h in enumerate(steps[s]):
            p, c = pl[l], cnts[l]
            load = [sum(h[p[r * S + j]] / c[p[r * S + j]] for j in range(S)) for r in range(R)]
            mx += max(load); mn += sum(load) / R
        oracle[s] = mx / mn
real = {int(r[0]): float(r[1]) for r in csv.reader(open(sys.argv[3])) if r and r[0] != "step"}
missing = [s for s in oracle if s not in real]
if not oracle or missing:
    sys.exit("bench_replay_clairvoyant: no replayed step %s" % (missing[:1] or "scored"))
def mean(ks, d):
    return sum(d[s] for s in ks) / len(ks)
ks = sorted(oracle)
ro, rr = mean(ks, oracle), mean(ks, real)
cells = ["keel", sys.argv[4], "%.4f" % rr, "%.4f" % ro, "%.3f" % (rr / ro)]
if want == "all":
    # the same ratio on each phase's steps, and how many of them were scored
    with open(sys.argv[7], "w") as n:
        for p in ("decode", "prefill"):
            kp = [s for s in ks if phase[s] == p]
            cells.append("%.3f" % (mean(kp, real) / mean(kp, oracle)) if kp else "-")
            n.write("%s %d\n" % (p, len(kp)))
cells.append(sys.argv[5])
print("| " + " | ".join(cells) + " |")
PY
	cat "$d/row"
	cat "$d/row" >>"$d/rows.$ph"
}
# one_batch LABEL GEN-ARGS...: the table and the noise floor of one trace
one_batch() {
label=$1
shift
rm -f "$d"/*.db "$d"/rows.*
"$MOETRACE" gen --model deepseek-v3 --steps $steps --seed 1 "$@" -q "$d/t.db"
echo
echo "**$label**"
echo
echo "| replay | episodes | realised | clairvoyant | realised / clairvoyant | on decode steps | on prefill steps | copies |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
"$MOETRACE" export "$d/t.db" --format jsonl -o "$d/t.jsonl" >/dev/null
# 0: the summed heat; 16: one episode per step, at most
# ANALYZE_REPLAY_EPISODES (what every other algorithm is given by default);
# $every: one per step, uncapped; forecast: the replay's default for keel,
# its forecast from the window and the history before it, against the
# per-step clairvoyant figure (the oracles of $every, kept)
for ep in 0 16 $every forecast; do
	replay_row all $ep
done
# The noise floor: a placement that sees the very traffic of an interval
# but not its scored steps.  Each interval's even steps fit (one episode per
# step), its odd steps score, against the placement fitted on the odd steps
# themselves; no drift separates the two halves, only sampling noise.
"$MOETRACE" export "$d/t.db" --format csv --sparse -o "$d/t.csv" >/dev/null
python3 - "$d/t.csv" "$d" $steps $every <<'PY'
import sys
src, d, steps, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = {}
with open(src) as f:
    head = f.readline()
    for line in f:
        s, rest = line.split(",", 1)
        rows.setdefault(int(s), []).append(rest)
def write(name, seq):
    with open(name, "w") as f:
        f.write(head)
        for new, old in enumerate(seq):
            for r in rows.get(old, []):
                f.write("%d,%s" % (new, r))
k = 1
while k * every < steps:
    iv = list(range(k * every, (k + 1) * every))
    write("%s/half%d.csv" % (d, k), iv[0::2] + iv[1::2])
    write("%s/self%d.csv" % (d, k), iv[1::2] + iv[1::2])
    k += 1
PY
half=$((every / 2))
k=1
: >"$d/floor"
while [ $((k * every)) -lt $steps ]; do
	for w in half self; do
		"$MOETRACE" import "$d/$w$k.csv" --into "$d/$w$k.db" --run f --ranks 64 --slots 5 \
			>/dev/null
		"$MOETRACE" compare "$d/$w$k.db" --rounds 2 --algos keel --episodes $half \
			--format csv | awk -F, -v w=$w '$1 == "mean" { print w, $6 }' >>"$d/floor"
	done
	k=$((k + 1))
done
tpr=$(sed -n 's/.*"tokens_per_rank": \([0-9.]*\).*/\1/p' "$d/r.json" | head -1)
# the per-step replay's realised and clairvoyant figures, and the default's
pr=$(awk -F'|' -v ep=$every '$3 + 0 == ep { print $4 + 0, $5 + 0 }' "$d/rows.all")
fr=$(awk -F'|' '$3 ~ /forecast/ { print $4 + 0 }' "$d/rows.all")
awk -v tpr="$tpr" -v pr="$pr" -v fr="$fr" -v every=$every '$1 == "half" { h += $2; nh++ } $1 == "self" { s += $2; ns++ }
	END { split(pr, p, " "); h /= nh; s /= ns
	      printf "\nNoise floor: fitted on each interval'"'"'s even steps (one episode per step) and scored\n"
	      printf "per step on its odd steps, keel reaches %.4f (fitted on the odd steps themselves: %.4f,\n", h, s
	      printf "%.3f times less). The two halves carry the same traffic, with no drift between them, only\n", h / s
	      printf "the sampling noise of steps with %.1f tokens per rank on average; yet %.4f is already %.3f\n", tpr, h, h / p[2]
	      printf "times the per-step clairvoyant figure above (%.4f), and the per-step replay, fitted on the\n", p[2]
	      printf "interval before, reaches %.4f, %.1f%% above it: what the drift from one interval to the\n", p[1], 100 * (p[1] / h - 1)
	      printf "next and a fit on the interval before cost. The noise of each step, which no placement\n"
	      printf "decided before it can see, costs the rest. The replay'"'"'s default (keel on its forecast\n"
	      printf "from the interval before and the history before that) reaches %.4f, %.1f%% above the\n", fr, 100 * (fr / h - 1)
	      printf "floor and %.1f%% above the per-step clairvoyant figure; ", 100 * (fr / p[2] - 1)
	      if (h / p[2] > 1.1)
		      printf "with the floor itself above 1.1 times\nthe clairvoyant figure, no setting brings the realised one within 10%% of it on this trace.\n"
	      else
		      printf "the floor itself is %.1f%% above it.\n", 100 * (h / p[2] - 1) }' "$d/floor"
phases "$label"
}
# phases LABEL: where the default's excess lies (its row's columns by
# phase), and the replay of the decode steps alone
phases() {
np=$(awk '$1 == "prefill" { print $2 }' "$d/n.all")
ns=$(awk '{ n += $2 } END { print n }' "$d/n.all")
awk -F'|' -v np="$np" -v ns="$ns" '$3 ~ /forecast/ { r = $6 + 0; dc = $7 + 0; pc = $8 + 0 }
	END { printf "\nBy phase: the default'"'"'s realised figure is %.3f times the clairvoyant one on the\n", dc
	      printf "decode steps and %.3f times on the prefill steps (%d of the %d steps scored). A prefill\n", pc, np, ns
	      printf "step routes the prompts that arrive at it, whose tokens go to their own experts together;\n"
	      printf "the clairvoyant placement, fitted on those very steps, knows which prompts come, and no\n"
	      printf "placement decided before them can"
	      if (dc < 1)
		      printf " (on the decode steps it does worse than the\ndefault: it gives them up for the prefill steps it knows)"
	      printf ". Where prefill runs on other ranks (prefill-decode\n"
	      printf "disaggregation, as large deployments of this model run), the decode ranks replay their\n"
	      printf "own steps (`replay --phase decode`, intervals and windows of decode steps):\n" }' "$d/rows.all"
echo
echo "| replay (decode steps) | episodes | realised | clairvoyant | realised / clairvoyant | copies |"
echo "|---|---:|---:|---:|---:|---:|"
for ep in $every forecast; do
	replay_row decode $ep
done
awk -F'|' '$3 ~ /forecast/ { printf "\nThere the default'"'"'s realised figure is %.1f%% above its clairvoyant one.\n", 100 * ($6 - 1) }' \
	"$d/rows.decode"
}
one_batch "Default decode batch (128)"
one_batch "Decode batch 2048" --decode-batch 2048
# The default against its clairvoyant figure on six traces of batch 2048
# (the generator's domain switches and prompts differ from seed to seed).
echo
echo "**Six traces, decode batch 2048** (\`--seed 1\` to \`6\`): the replay's default, realised /"
echo "clairvoyant, on all steps and by phase, and replaying the decode steps alone."
echo
echo "| seed | realised / clairvoyant | on decode steps | on prefill steps | decode steps only |"
echo "|---:|---:|---:|---:|---:|"
for seed in 1 2 3 4 5 6; do
	rm -f "$d"/*.db "$d"/rows.*
	"$MOETRACE" gen --model deepseek-v3 --steps $steps --seed $seed --decode-batch 2048 -q "$d/t.db"
	"$MOETRACE" export "$d/t.db" --format jsonl -o "$d/t.jsonl" >/dev/null
	oracles all $every
	replay_row all forecast >/dev/null
	oracles decode $every
	replay_row decode forecast >/dev/null
	a=$(awk -F'|' '{ print $6 + 0, $7 + 0, $8 + 0 }' "$d/rows.all")
	b=$(awk -F'|' '{ print $6 + 0 }' "$d/rows.decode")
	echo "$seed $a $b" >>"$d/seeds"
	echo "$seed $a $b" | awk '{ printf "| %d | %.3f | %.3f | %.3f | %.3f |\n", $1, $2, $3, $4, $5 }'
done
awk '{ for (i = 2; i <= 5; i++) m[i] += $i; n++ }
	END { printf "| mean | %.3f | %.3f | %.3f | %.3f |\n", m[2] / n, m[3] / n, m[4] / n, m[5] / n }' \
	"$d/seeds"
