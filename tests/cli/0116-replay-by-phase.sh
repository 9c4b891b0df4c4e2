# moetrace replay splits its per-step figures by phase, on a hand-made
# trace whose answers are known.
. "$(dirname "$0")/lib.sh"

# 1 layer, 4 experts, 2 ranks x 2 slots, static layout {0,1},{2,3}.
# Prefill steps (0, 4, 8) route [10,10,0,0]: rank 0 gets 20 of 20, so the
# step's max / mean device load is 2.0.  Decode steps route [10,0,10,0]:
# 10 on each rank, 1.0.  Rebalanced only for the last step (11, decode),
# the replay keeps the static layout's figures: decode 1.0 on 9 steps
# (and 1.0 on step 11 under any placement of two experts a rank that
# splits 0 from 2: eplb's on steps 0-10, [110,30,80,0], pairs 0 with 3),
# prefill 2.0 on 3, overall (9 + 6) / 12 = 1.25.
{
	echo "step,layer,expert,tokens,phase"
	for s in $(seq 0 11); do
		if [ $((s % 4)) -eq 0 ]; then
			printf '%s\n' "$s,0,0,10,prefill" "$s,0,1,10,prefill" "$s,0,2,0,prefill" \
				"$s,0,3,0,prefill"
		else
			printf '%s\n' "$s,0,0,10,decode" "$s,0,1,0,decode" "$s,0,2,10,decode" \
				"$s,0,3,0,decode"
		fi
	done
} >"$T/mix.csv"
expect_status 0 mt import "$T/mix.csv" --into "$T/db" --run mix --ranks 2 --slots 2
expect_status 0 mt replay "$T/db" --algo eplb --interval 11 --delay 0 --start static --no-store
expect_grep "$T/out" '^imbalance, mean over steps +1\.250 +1\.250$'
expect_grep "$T/out" '^  on 9 decode steps +1\.000 +1\.000$'
expect_grep "$T/out" '^  on 3 prefill steps +2\.000 +2\.000$'
expect_status 0 mt replay "$T/db" --algo eplb --interval 11 --delay 0 --start static --no-store --json
python3 - "$T/out" <<'PY' || fail "the figures by phase in --json"
import json, sys
d = json.load(open(sys.argv[1]))
p, s = d["by_phase"], d["summary"]
assert p["decode"]["steps"] == 9 and p["prefill"]["steps"] == 3, p
assert p["decode"]["baseline_imbalance_mean"] == 1.0, p
assert p["prefill"]["imbalance_mean"] == 2.0, p
# the p99s from each phase's own histogram (bins 0.05% wide; 1.0 is the
# first bin's, exact)
assert p["decode"]["baseline_imbalance_p99"] == 1.0, p
assert p["decode"]["imbalance_p99"] == 1.0, p
assert abs(p["prefill"]["imbalance_p99"] / 2.0 - 1) < 5e-4, p
assert abs(p["prefill"]["baseline_imbalance_p99"] / 2.0 - 1) < 5e-4, p
# the phases' means weighted by their steps give the overall mean
m = (9 * p["decode"]["imbalance_mean"] + 3 * p["prefill"]["imbalance_mean"]) / 12
assert abs(m - s["imbalance_mean"]) < 1e-6, (m, s)
PY

# A rebalance changes only the replay's figures: from step 4 on, eplb on
# the window of steps 0-3 (heat [40,10,30,0]) replicates nothing (no
# redundant slot) and pairs 0 with 3 and 1 with 2, which balances neither
# prefill ([10,10,0,0]: 10 and 10, 1.0) nor spoils decode ([10,0,10,0]:
# 10 and 10, 1.0): every scored step after it is 1.0.
expect_status 0 mt replay "$T/db" --algo eplb --interval 4 --window 4 --delay 0 \
	--start static --no-store --json
python3 - "$T/out" <<'PY' || fail "the figures by phase after a rebalance"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["by_phase"]
# decode: steps 1-3 under static (1.0) and 5-7, 9-11 after (1.0)
assert p["decode"]["imbalance_mean"] == 1.0, p
# prefill: step 0 under static (2.0), steps 4 and 8 after (1.0)
assert abs(p["prefill"]["imbalance_mean"] - 4 / 3) < 1e-6, p
assert p["prefill"]["baseline_imbalance_mean"] == 2.0, p
PY

# One phase only (the 9 decode steps, the last rebalanced: 1.0 under any
# placement that splits 0 from 2): no rows by phase in the table, and the
# other phase's figures are null in --json.
expect_status 0 mt replay "$T/db" --algo eplb --interval 8 --delay 0 --start static --no-store \
	--phase decode
expect_grep "$T/out" '^imbalance, mean over steps +1\.000 +1\.000$'
expect_nogrep "$T/out" 'decode steps|prefill steps'
expect_status 0 mt replay "$T/db" --algo eplb --interval 8 --delay 0 --start static --no-store \
	--phase decode --json
expect_grep "$T/out" '"prefill": \{"steps": 0, "imbalance_mean": null, "baseline_imbalance_mean": null, "imbalance_p99": null, "baseline_imbalance_p99": null\}'

# A trace without phases: every step in neither.
sed 's/,[a-z]*$//' "$T/mix.csv" >"$T/plain.csv"
expect_status 0 mt import "$T/plain.csv" --into "$T/plain.db" --run plain --ranks 2 --slots 2
expect_status 0 mt replay "$T/plain.db" --algo eplb --interval 11 --delay 0 --start static \
	--no-store --json
expect_grep "$T/out" '"decode": \{"steps": 0,'
expect_grep "$T/out" '"prefill": \{"steps": 0,'
# --phase on it selects nothing: the error says why, and stores nothing
expect_status 2 mt replay "$T/plain.db" --algo eplb --interval 11 --phase decode
expect_grep "$T/err" "run 'plain': none of the 12 steps in the chosen range is a decode step"
[ "$(sqlite3 "$T/plain.db" "SELECT count(*) FROM replays")" = 0 ] || fail "a refused replay was stored"
