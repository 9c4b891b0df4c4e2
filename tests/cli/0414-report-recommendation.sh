# report: the summary says what to do.  The recommendation follows from the
# figures the report computes: the best algorithm (lowest per-step imbalance
# on the next window) and the replay of it, whose net saved time (stop the
# world, overlapped) is what `moetrace replay` prints for the same settings.
# The cases: it pays stopping the world, it pays only overlapped, it does
# not pay (a slow link; too few tokens to save MoE time), and unpriced (no model); plus a trace where static is best.
. "$(dirname "$0")/lib.sh"
mt place --list | grep -q "^eplb " || skip "no eplb in this build"

# 2 layers x 8 experts (Mixtral-8x7B's count), 40 steps, hot experts moving
# every 10 steps; `mul` scales the tokens: thousands of tokens per expert
# make balance worth MoE time, a hundred do not
mk() {
	python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(40):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, int(sys.argv[2]) * [90, 50, 30, 20, 10, 8, 5, 2][(e + l + s // 10) % 8]))
PY
}
mk "$T/small.csv" 1
mk "$T/big.csv" 2000
expect_status 0 mt import "$T/small.csv" --into "$T/small" --run r --ranks 4 --slots 3
expect_status 0 mt import "$T/big.csv" --into "$T/big" --run r --ranks 4 --slots 3
# the same on two nodes of 2 ranks: copies across nodes go at the network's
# speed, as `replay` prices them by default (not at NVLink's)
expect_status 0 mt import "$T/big.csv" --into "$T/nodes" --run r --ranks 4 --slots 3 \
	--ranks-per-node 2

# the default algorithm, which the replay gives its forecast, not episodes
flagship=$("$MOETRACE" place --list | sed -n 's/^\([a-z0-9-]*\) .*\[default\]$/\1/p')
[ -n "$flagship" ] || fail "no default algorithm in place --list"

# check DB NAME [report options]: the report's recommendation is the one the
# replay of its best algorithm implies (window of 5 steps: 5 episodes, or for
# the flagship its forecast, as `replay` gives it by default)
check() {
	db=$1 name=$2
	shift 2
	expect_status 0 mt report "$T/$db" -o "$T/rep-$name" --algos static,eplb "$@"
	cp "$T/out" "$T/$name.stdout"
	best=$(sed -n 's/^best: \([a-z0-9_-]*\),.*/\1/p' "$T/$name.stdout")
	[ -n "$best" ] || fail "no best line"
	eps="--episodes 5"
	[ "$best" = "$flagship" ] && eps=
	expect_status 0 mt replay "$T/$db" --algo "$best" --ranks 4 --slots 3 $eps \
		--no-store --json "$@"
	python3 - "$T/out" "$T/$name.stdout" "$best" "$*" >>"$T/cases" <<'PY' || fail "recommendation of case $name"
import json, re, sys
d = json.load(open(sys.argv[1]))
m = d["summary"]
out = open(sys.argv[2]).read()
best, opts = sys.argv[3], sys.argv[4]
rec = re.search(r"^recommendation: (.*)$", out, re.M).group(1)
g = lambda v: "%.3g" % v
if best == "static" or m["moves"] == 0 or m["imbalance_mean"] >= m["baseline_imbalance_mean"]:
    want = "rebalancing does not pay here: keep the static placement (4 ranks x 3 slots, 4 redundant experts)"
    assert rec.startswith(want), (rec, want)
elif "--model" not in opts:
    want = "deploy %s with 4 redundant experts, rebalancing every %d steps" % (best, d["params"]["interval"])
    assert rec.startswith(want) and rec.endswith("whether the moves pay is unknown: give --model"), (rec, want)
elif m["net_stop_seconds"] > 0:
    want = "deploy %s with 4 redundant experts, rebalancing every %d steps: it saves %s s net even stopping the world" % (best, d["params"]["interval"], g(m["net_stop_seconds"]))
    assert rec.startswith(want), (rec, want)
elif m["net_overlap_seconds"] > 0:
    want = "deploy %s with 4 redundant experts, rebalancing every %d steps only with the weights moved behind serving: %s s net overlapped, %s s lost stopping the world" % (best, d["params"]["interval"], g(m["net_overlap_seconds"]), g(-m["net_stop_seconds"]))
    assert rec == want, (rec, want)
elif m["saved_seconds"] >= 0:
    want = "rebalancing does not pay here: %s every %d steps saves %s s of MoE time but moving weights loses %s s net even overlapped" % (best, d["params"]["interval"], g(m["saved_seconds"]), g(-m["net_overlap_seconds"]))
    assert rec.startswith(want), (rec, want)
else:
    # a lower imbalance that costs MoE time: the moves are not what loses
    want = "rebalancing does not pay here: %s every %d steps lowers the mean per-step imbalance (%.3f against %.3f) but adds %s s of MoE time on the step-time model; %s s lost net even overlapped" % (best, d["params"]["interval"], m["imbalance_mean"], m["baseline_imbalance_mean"], g(-m["saved_seconds"]), g(-m["net_overlap_seconds"]))
    assert rec.startswith(want), (rec, want)
print(sys.argv[4] or "-", "->", rec.split(":")[0])
PY
	# the same line heads the PDF's summary page, when a text extractor is here
	if command -v pdftotext >/dev/null; then
		pdftotext -f 1 -l 1 "$T/rep-$name/report.pdf" - | tr '\n' ' ' | tr -s ' ' >"$T/p1"
		rec=$(sed -n 's/^recommendation: \(.*\)$/\1/p' "$T/$name.stdout" | cut -c1-40)
		grep -qF -- "$rec" "$T/p1" || { cat "$T/p1" >&2; fail "the summary page lacks '$rec'"; }
	fi
}

check big stop --model mixtral-8x7b
check big overlap --model mixtral-8x7b --bandwidth 3
check big slow --model mixtral-8x7b --bandwidth 1
check small nopay --model mixtral-8x7b
check small unpriced
check nodes twonodes --model mixtral-8x7b
# each case reached the branch it is meant to test
[ "$(wc -l <"$T/cases")" -eq 6 ] || fail "not every case was checked"
# the summary page names both tiers
expect_grep "$T/twonodes.stdout" "^recommendation: "
pdftotext -f 1 -l 1 "$T/rep-twonodes/report.pdf" - 2>/dev/null | tr '\n' ' ' | tr -s ' ' >"$T/p1" &&
	{ grep -q "2 nodes x 2 ranks" "$T/p1" && grep -q "ib-ndr-400g" "$T/p1" ||
		{ cat "$T/p1" >&2; fail "the summary page does not name the two tiers"; }; }
# and says in serving units what the replay saves, as replay --json does
best=$(sed -n 's/^best: \([a-z0-9_-]*\),.*/\1/p' "$T/twonodes.stdout")
eps="--episodes 5"
[ "$best" = "$flagship" ] && eps=
expect_status 0 mt replay "$T/nodes" --algo "$best" --ranks 4 --slots 3 $eps --no-store \
	--json --model mixtral-8x7b
share=$(python3 -c 'import json,sys; print("%.2f%% saved" % (100 * json.load(open(sys.argv[1]))["moe_time_saved_share"]))' "$T/out")
grep -q "MoE time .* ($share)" "$T/p1" || { cat "$T/p1" >&2; fail "the summary page lacks the MoE time saved ($share)"; }
expect_grep "$T/overlap.stdout" "only with the weights moved behind serving"
expect_grep "$T/nopay.stdout" "^recommendation: rebalancing does not pay here: "
expect_grep "$T/slow.stdout" "^recommendation: rebalancing does not pay here: .* loses .* net even overlapped"
expect_grep "$T/unpriced.stdout" "^recommendation: deploy .* give --model$"
expect_grep "$T/stop.stdout" "^recommendation: deploy .* even stopping the world"

# a lower imbalance that costs MoE time: at a small batch (Llama-4-Maverick,
# top-1, about 270 tokens a step on 16 ranks) a rank's MoE time is reading
# its active experts' weights, and spreading the hot experts gives the
# busiest rank more of them.  The line says that, with the replay's figures,
# rather than "saves -T s of MoE time but moving weights loses T s".
expect_status 0 mt gen --model llama4-maverick --steps 160 --seed 3 -q "$T/l4"
expect_status 0 mt report "$T/l4" -o "$T/rl4"
cp "$T/out" "$T/l4.stdout"
best=$(sed -n 's/^best: \([a-z0-9_-]*\),.*/\1/p' "$T/l4.stdout")
[ -n "$best" ] || fail "no best line"
eps="--episodes 8"
[ "$best" = "$flagship" ] && eps=
expect_status 0 mt replay "$T/l4" --algo "$best" $eps --no-store --json
python3 - "$T/out" "$T/l4.stdout" "$best" <<'PY' || fail "recommendation when balancing costs MoE time"
import json, re, sys
d = json.load(open(sys.argv[1]))
m = d["summary"]
rec = re.search(r"^recommendation: (.*)$", open(sys.argv[2]).read(), re.M).group(1)
g = lambda v: "%.3g" % v
assert m["saved_seconds"] < 0 and m["imbalance_mean"] < m["baseline_imbalance_mean"], m
assert m["net_overlap_seconds"] <= 0, m
want = ("rebalancing does not pay here: %s every %d steps lowers the mean per-step imbalance "
        "(%.3f against %.3f) but adds %s s of MoE time on the step-time model; %s s lost net "
        "even overlapped (%s s stopping the world)") % (
    sys.argv[3], d["params"]["interval"], m["imbalance_mean"], m["baseline_imbalance_mean"],
    g(-m["saved_seconds"]), g(-m["net_overlap_seconds"]), g(-m["net_stop_seconds"]))
assert rec == want, (rec, want)
PY

# static best on the next window (the case of 0413): keep it
python3 - "$T/t.csv" <<'PY'
import sys
kinds = [(10, 0, 0, 10), (0, 10, 10, 0), (10, 10, 0, 0)]
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(12):
        row = (10, 9, 2, 1) if s < 6 else kinds[(s - 6) % 3]
        for e in range(4):
            f.write("%d,0,%d,%d\n" % (s, e, row[e]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/st" --run b --ranks 2 --slots 2
expect_status 0 mt report "$T/st" -o "$T/rst" --algos static,eplb --episodes 0
expect_grep "$T/out" "^best: static,"
expect_grep "$T/out" "^recommendation: rebalancing does not pay here: keep the static placement \(2 ranks x 2 slots, no redundant experts\); the static layout scores best"
exit 0
