#!/bin/sh
# What a live ClickHouse sink (record --sink, moetrace_recorder_ship) costs
# the recording: bench_recorder's engine-thread cost per step and its
# sustained steps/s, each run without and with a sink shipping to a server
# started here (config under a temporary directory), alternated, 3 runs
# each; medians and ratios.
set -u
. "$(dirname "$0")/lib.sh"
echo "## Recorder with a live ClickHouse sink"
echo
bin="$MOETRACE_BENCH_BIN/bench_recorder"
[ -x "$bin" ] || { echo "skipped: $bin not built (make bench-build)"; exit 0; }
if ! command -v clickhouse-server >/dev/null; then
	echo "clickhouse-server not installed (make deps-test): not measured."
	exit 0
fi
bench_ch_start
kv() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
med() { sort -g | sed -n 2p; }
for i in 1 2 3; do
	"$bin" cost "$d" 2000 500 >"$d/c0.$i"
	MOETRACE_BENCH_SINK="clickhouse://127.0.0.1:$H/bench$i" "$bin" cost "$d" 2000 500 >"$d/c1.$i"
	"$bin" sustained "$d" 6000 >"$d/s0.$i"
	MOETRACE_BENCH_SINK="clickhouse://127.0.0.1:$H/bsus$i" "$bin" sustained "$d" 6000 >"$d/s1.$i"
done
col() { for i in 1 2 3; do kv "$d/$1.$i" "$2"; done | med; }
p50_0=$(col c0 step_p50_us) p50_1=$(col c1 step_p50_us)
p99_0=$(col c0 step_p99_us) p99_1=$(col c1 step_p99_us)
m50_0=$(col c0 memcpy_p50_us) m50_1=$(col c1 memcpy_p50_us)
drop0=$(col c0 dropped) drop1=$(col c1 dropped)
sus0=$(col s0 steps_per_s) sus1=$(col s1 steps_per_s)
cpu0=$(col s0 steps_per_cpu_s) cpu1=$(col s1 steps_per_cpu_s)
rows=$(curl -sS --data-binary "SELECT count() FROM bsus1.steps" "http://127.0.0.1:$H/")
r2() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.2f", a / b }'; }
echo "DeepSeek-V3 shape (58 x 256), bench_recorder as in the recorder's section; the sink ships"
echo "to clickhouse-server $(curl -sS --data-binary 'SELECT version()' "http://127.0.0.1:$H/") on the same machine ($(nproc) cores shared by"
echo "the engine thread, the writer, the sink's thread and the server). Medians of 3 runs each,"
echo "the runs without and with a sink alternated."
echo
echo "| engine-thread cost per step | p50 | p99 | memcpy p50 (same run) | dropped of 2000 |"
echo "|---|---|---|---|---|"
echo "| \`moetrace_recorder_step()\` without a sink | $p50_0 us | $p99_0 us | $m50_0 us | $drop0 |"
echo "| \`moetrace_recorder_step()\` with a sink | $p50_1 us | $p99_1 us | $m50_1 us | $drop1 |"
echo "| ratio with / without | $(r2 "$p50_1" "$p50_0")x | $(r2 "$p99_1" "$p99_0")x | | |"
echo
echo "| sustained recording (blocking policy, 6000 steps) | without a sink | with a sink | ratio |"
echo "|---|---|---|---|"
echo "| steps/s committed, wall clock | $sus0 | $sus1 | $(r2 "$sus1" "$sus0")x |"
echo "| steps per CPU-second of the process | $cpu0 | $cpu1 | $(r2 "$cpu1" "$cpu0")x |"
echo
echo "(The sink shipped $rows of the 6000 steps of the first sustained run with it by the time"
echo "the recorder closed, which waits up to 5 s for the rest.)"
