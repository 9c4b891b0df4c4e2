#!/bin/sh
# Replay of 10,000 DeepSeek-V3 steps (58 x 256, 64 x 5) with 11 rebalances.
set -eu
. "$(dirname "$0")/lib.sh"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$MOETRACE" gen --model deepseek-v3 --steps 10000 --seed 11 "$d/t.db" >/dev/null
echo "## Replay: rebalancing over a recorded run"
echo
echo "\`moetrace replay\` over a 10,000-step DeepSeek-V3 trace from \`moetrace gen\` (58 layers x 256"
echo "experts, 64 ranks x 5 slots), every 900 steps on a window of 900, effect 50 steps later:"
echo "11 rebalances. Whole process, median of 3 runs; \`--no-store\` scores only, the default"
echo "also writes the 580,000 per-step per-layer rows. Budget (DESIGN.md): < 2 s. Every row uses"
echo "the replay's default episodes (the window as 16 episodes; ANALYZE_REPLAY_EPISODES)."
echo
echo "| algorithm | stored | seconds | of which algorithm | mean imbalance (baseline) | copies |"
echo "|---|---|---|---|---|---|"
for algo in eplb keel; do
	"$MOETRACE" place --list 2>/dev/null | grep -q "^ *$algo" || continue
	for store in no yes; do
		flag=--no-store; [ $store = yes ] && flag=
		run() { "$MOETRACE" replay "$d/t.db" --algo $algo --interval 900 --window 900 --delay 50 $flag --json >"$d/out.json"; }
		t=$(median_time 3 run)
		a=$(sed -n 's/.*"algo_seconds": \([0-9.]*\).*/\1/p' "$d/out.json" | head -1)
		im=$(sed -n 's/.*"imbalance_mean": \([0-9.]*\), "baseline_imbalance_mean": \([0-9.]*\).*/\1 (\2)/p' "$d/out.json" | head -1)
		mv=$(sed -n 's/.*"events": [0-9]*, "moves": \([0-9]*\).*/\1/p' "$d/out.json" | head -1)
		echo "| $algo | $store | $(fmt3 "$t") | $(fmt3 "$a") | $im | $mv |"
	done
done
# only the moves that pay for their transfer (docs/replay.md)
run() { "$MOETRACE" replay "$d/t.db" --algo keel --interval 900 --window 900 --delay 50 --pay --no-store --json >"$d/out.json"; }
t=$(median_time 3 run)
a=$(sed -n 's/.*"algo_seconds": \([0-9.]*\).*/\1/p' "$d/out.json" | head -1)
im=$(sed -n 's/.*"imbalance_mean": \([0-9.]*\), "baseline_imbalance_mean": \([0-9.]*\).*/\1 (\2)/p' "$d/out.json" | head -1)
mv=$(sed -n 's/.*"events": [0-9]*, "moves": \([0-9]*\).*/\1/p' "$d/out.json" | head -1)
echo "| keel --pay | no | $(fmt3 "$t") | $(fmt3 "$a") | $im | $mv |"
