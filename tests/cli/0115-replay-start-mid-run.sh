#!/bin/sh
# A placement deployed mid-run is not in force before the step it took
# effect: a replay of the whole run starts (and keeps its baseline) where the
# run stood at its first selected step, the same whether the range is given
# (--steps 0:39) or not, and the report's replay and serve's
# --rebalance-every start there too.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 5 -q "$T/db"
# from step 20 every layer holds rank r: 2r, 2r+1, (2r+4) mod 8 (4 x 3 slots)
deploy_mid_run "$T/db" 20
base() { tr ',' '\n' <"$T/out" | sed -n 's/^ *"baseline_imbalance_mean": *\([0-9.]*\).*/\1/p' | head -1; }

expect_status 0 mt replay "$T/db" --no-store --json --algo eplb
whole=$(base)
expect_grep "$T/out" '"start": "static"'
expect_status 0 mt replay "$T/db" --no-store --json --algo eplb --steps 0:39
ranged=$(base)
expect_status 0 mt replay "$T/db" --no-store --json --algo eplb --start static
static=$(base)
[ -n "$whole" ] && [ "$whole" = "$ranged" ] ||
	fail "baseline of the whole run $whole, of --steps 0:39 $ranged"
[ "$whole" = "$static" ] || fail "baseline $whole, static from step 0 $static"
# from step 20 on, the deployed placement is the start
expect_status 0 mt replay "$T/db" --no-store --json --algo eplb --steps 20:39
expect_grep "$T/out" '"start": "deployed \(from step 20\)"'

# the report's replay: its start placement's mean is the same baseline
expect_status 0 mt report "$T/db" --algos eplb -o "$T/rep"
rb=$(sed -n 's/.*replayed every .*: mean [0-9.]* against \([0-9.]*\).*/\1/p' "$T/out")
[ -n "$rb" ] || fail "no replay line in the report's summary"
awk -v a="$rb" -v b="$whole" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 0.00006) }' ||
	fail "report's start placement $rb, replay's baseline $whole"

# serve --rebalance-every: the same replay, the same baseline
expect_status 0 mt replay "$T/db" --no-store --json --interval 5
whole=$(base)
expect_status 0 mt serve --once --rebalance-every 5 "$T/db"
sb=$(sed -n 's/^moetrace_rebalance_baseline_imbalance_mean \([0-9.]*\)$/\1/p' "$T/out")
[ -n "$sb" ] || fail "no moetrace_rebalance_baseline_imbalance_mean"
awk -v a="$sb" -v b="$whole" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 0.000001) }' ||
	fail "serve's baseline $sb, replay's $whole"
exit 0
