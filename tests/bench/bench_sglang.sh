#!/bin/sh
# SGLang .pt import: the C reader (moetrace import) against the Python
# converter (python3 -m moetrace.sglang_dump: its checked reader, then moetrace
# import of JSON lines) on SGLang's full default stat buffer, 1000 forward
# passes x 61 model layers x 256 experts (int32, 62 MB), written with torch
# by tests/data/make_sglang_dumps.py.  Wall and CPU time and peak memory
# from /usr/bin/time -v.
set -eu
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
echo "## SGLang .pt import"
echo
if ! $py -c "import torch" 2>/dev/null || [ ! -x /usr/bin/time ]; then
	echo "skipped: needs python3-torch and /usr/bin/time"
	exit 0
fi
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
$py "$MOETRACE_TOP/tests/data/make_sglang_dumps.py" stat "$d" 1000 61 256 3 1
pt=$(ls "$d"/*.pt)
# tv FILE: "wall user+sys peak_MiB" from a /usr/bin/time -v report
tv() {
	awk -F': ' '/Elapsed/ { n = split($2, a, ":"); w = a[n] + (n > 1 ? a[n-1] * 60 : 0) }
		/User time/ { c += $2 } /System time/ { c += $2 }
		/Maximum resident/ { m = $2 / 1024 }
		END { printf "%.2f %.2f %.0f\n", w, c, m }' "$1"
}
c_run() { rm -f "$d/c.db"*; /usr/bin/time -v "$MOETRACE" import "$pt" --into "$d/c.db" --run r >/dev/null 2>"$d/c.time"; }
t_c=$(median_time 5 c_run)
set -- $(tv "$d/c.time")
c_cpu=$2 c_mem=$3
rm -f "$d/p.db"*
PYTHONPATH="$MOETRACE_TOP/collector/python" MOETRACE="$MOETRACE" /usr/bin/time -v \
	$py -m moetrace.sglang_dump "$pt" --into "$d/p.db" --run r >/dev/null 2>"$d/p.time"
set -- $(tv "$d/p.time")
p_wall=$1 p_cpu=$2 p_mem=$3
same=$(sqlite3 "$d/c.db" "ATTACH '$d/p.db' AS p; SELECT count(*) FROM counts c JOIN p.counts q
	USING (step, layer) WHERE c.data != q.data")
echo "One stat dump of SGLang's default buffer (\`--expert-distribution-recorder-buffer-size\` 1000):"
echo "1000 passes x 61 model layers (3 dense) x 256 experts, int32, $(($(stat -c %s "$pt") / 1048576)) MiB,"
echo "imported into a new trace (58 MoE layers). C: median of 5 runs; Python: one run."
echo "Peak memory is the maximum resident set of the process (and of the \`moetrace import\`"
echo "the Python converter runs). Blobs that differ between the two traces: $same."
echo
echo "| reader | wall s | CPU s (user+sys) | peak MiB |"
echo "|---|---|---|---|"
echo "| \`moetrace import DUMP.pt\` (C) | $(fmt3 "$t_c") | $c_cpu | $c_mem |"
echo "| \`python3 -m moetrace.sglang_dump\` (Python) | $p_wall | $p_cpu | $p_mem |"
echo "| ratio | $(ratio "$p_wall" "$t_c")x faster | $(ratio "$p_cpu" "$c_cpu")x less | $(ratio "$p_mem" "$c_mem")x less |"
