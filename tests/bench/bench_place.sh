#!/bin/sh
# Placement algorithms: time on the 58 x 256 window (64 x 5 and 32 x 9),
# fitted and per-episode quality, copies from the static layout, and
# quality on two real traces, next to the public codes' figures.
set -eu
. "$(dirname "$0")/lib.sh"
bin="$MOETRACE_BENCH_BIN/bench_place"
win="$MOETRACE_SHARED/data/examples/zipf-dsv3-window.json"
real="$MOETRACE_SHARED/data/real"
echo "## Placement algorithms"
echo
[ -x "$bin" ] || { echo "skipped: $bin not built (make bench-build)"; exit 0; }
[ -f "$win" ] || { echo "skipped: $win not found"; exit 0; }
head='| algorithm | ranks x slots | given | fitted peak/avg | per-episode peak/avg | max / lower bound | copies | layers with a duplicate | ms (all layers) | CPU ms |'
rule='|---|---|---|---:|---:|---:|---:|---:|---:|---:|'
echo "On \`data/examples/zipf-dsv3-window.json\` (58 layers x 256 experts, 16 episodes). \"given\":"
echo "the summed heat only, or the 16 episodes too. fitted = sum over layers of max / sum of mean"
echo "device load on the summed heat; per-episode = mean over episodes and layers of max/mean device"
echo "load; copies = expert copies from the engines' initial layout, which each algorithm gets as"
echo "the current placement; time = median of 5 runs without a current placement (3 for the real"
echo "traces), one thread, wall clock and the process's CPU time (which a busy machine"
echo "inflates less). Device loads split a replicated expert's tokens evenly. \"blocks\": the"
echo "flagship given the 16 episodes as the window's blocks in time, its default input (it fits a"
echo "forecast of the next window with bootstrap scenarios, so its figures on this window are not"
echo "what it aims at; docs/algorithms.md)."
echo
echo "$head"
echo "$rule"
"$bin" window "$win" 64 5 5
"$bin" window "$win" 32 9 5
echo
echo "Public codes on the same file (DESIGN.md and the file's reference_results, measured on this"
echo "machine class, not rerun here): 64 x 5 — DeepSeek EPLB fitted 1.0241, per-episode 1.4192,"
echo "18,216 copies, 1.79 s (vLLM NumPy port 0.10 s); FlashLB given the sum 1.0183 / 1.4204 /"
echo "14,263 copies / 1.44 s, given the episodes 1.0438 / 1.3098 / 14,297 copies / 1.53 s;"
echo "SwiftBalancer 1.9313 / 2.1622 / 4,219 copies / 0.58 s. 32 x 9 — DeepSeek 1.006 (0.82 s),"
echo "FlashLB 1.0021. Budgets for the flagship: fitted <= 1.003 (64 x 5) and <= 1.0005 (32 x 9),"
echo "per-episode <= 1.22, <= 50 ms; eplb <= 1 ms."
echo
echo "Real traces (heat = all steps; episodes = 16 near-equal consecutive chunks of steps):"
echo
echo "$head"
echo "$rule"
t="$real/deepseek_v2_lite_puffin/expert_load.csv"
[ -f "$t" ] && "$bin" trace "$t" 8 10 3
t="$real/llama4_maverick_mmlu/expert_load_by_request.csv"
[ -f "$t" ] && "$bin" trace "$t" 16 10 3
echo
echo "Public codes at best (DESIGN.md): deepseek_v2_lite_puffin 8 x 10 fitted 1.0019, per-episode"
echo "1.055; llama4_maverick_mmlu by request 16 x 10 fitted 1.0018, per-episode 1.63. Budgets for"
echo "the flagship: 1.0015 / 1.035 and 1.001 / 1.20."
