#!/bin/sh
# moetrace push of a 10,000-step DeepSeek-V3 trace (58 x 256, 148 million
# cells) into a ClickHouse server started here (config under a temporary
# directory), against clickhouse-client inserting the same rows in RowBinary
# (read back from the server); wall time and the server's CPU (utime +
# stime from /proc/PID/stat) for each, into a fresh database each time;
# then bytes per cell in ClickHouse (system.parts) and in the trace file.
set -u
. "$(dirname "$0")/lib.sh"
echo "## ClickHouse push (moetrace push)"
echo
if ! command -v clickhouse-server >/dev/null || ! command -v clickhouse-client >/dev/null; then
	echo "clickhouse-server/clickhouse-client not installed (make deps-test): not measured."
	exit 0
fi
bench_ch_start
q() { curl -sS --fail --data-binary "$2" "http://127.0.0.1:$H/?database=$1"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$srv/stat"; }
hz=$(getconf CLK_TCK)
"$MOETRACE" gen --model deepseek-v3 --steps 10000 --seed 1 -q "$d/t.db"
"$MOETRACE" gen --model deepseek-v3 --steps 1 --seed 2 -q "$d/one.db"
"$MOETRACE" push "$d/t.db" "clickhouse://127.0.0.1:$H/src" --deployment d0 >/dev/null
q src "SELECT * FROM counts ORDER BY step, layer FORMAT RowBinary" >"$d/counts.rb"
q src "SELECT * FROM steps ORDER BY step FORMAT RowBinary" >"$d/steps.rb"
# measure NAME CMD...: "wall cpu" of one run into a fresh database $db
measure() {
	c0=$(cpu); s=$(date +%s.%N)
	"$@" >/dev/null || { echo "failed: $*" >&2; exit 1; }
	e=$(date +%s.%N); c1=$(cpu)
	awk -v a="$s" -v b="$e" -v c="$c0" -v f="$c1" -v hz="$hz" 'BEGIN{ printf "%.3f %.3f\n", b - a, (f - c) / hz }'
}
row() { # label batch|client
	ws=""; cs=""
	for r in 1 2 3; do
		db=b_$2_$r
		"$MOETRACE" push "$d/one.db" "clickhouse://127.0.0.1:$H/$db" --deployment init >/dev/null
		sleep 2
		if [ "$2" = client ]; then
			set -- $(measure sh -c "clickhouse-client --port $N --query 'INSERT INTO $db.counts FORMAT RowBinary' <'$d/counts.rb' && clickhouse-client --port $N --query 'INSERT INTO $db.steps FORMAT RowBinary' <'$d/steps.rb'") "$1" "$2"
		else
			set -- $(measure "$MOETRACE" push "$d/t.db" "clickhouse://127.0.0.1:$H/$db" --deployment d0 --batch "$2") "$1" "$2"
		fi
		ws="$ws $1"; cs="$cs $2"
		set -- "$3" "$4"
		q default "DROP DATABASE $db" >/dev/null
	done
	w=$(echo $ws | tr ' ' '\n' | sort -g | sed -n 2p)
	c=$(echo $cs | tr ' ' '\n' | sort -g | sed -n 2p)
	awk -v l="$1" -v w="$w" -v c="$c" 'BEGIN{ printf "| %s | %.2f | %.0f | %.2f | %.3f |\n", l, w, 10000 / w, c, c / 10 }'
}
echo "\`sh tests/bench/run.sh push\`: 10,000 steps (580,000 counts rows, 148,480,000 cells, 615 MB"
echo "of RowBinary), each row the median of 3 runs into a fresh database (schema created"
echo "beforehand); server CPU = utime + stime of clickhouse-server $(q default "SELECT version()") over the"
echo "run, background merges included."
echo
echo "| client | wall s | steps/s | server CPU s | server CPU ms/step |"
echo "|---|---|---|---|---|"
row "moetrace push --batch 256 (HTTP, RowBinary)" 256
row "moetrace push (--batch 1024, the default)" 1024
row "clickhouse-client, same rows, one INSERT (native protocol)" client
echo
q src "OPTIMIZE TABLE counts FINAL" >/dev/null
set -- $(q src "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = 'src'
	AND table = 'counts' AND active FORMAT TSV")
rows=$1 chb=$2
rb=$(q src "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'src' AND table = 'counts_rollup' AND active")
cells=$((rows * 256))
blob=$("$MOETRACE" sql --format csv "$d/t.db" "SELECT sum(length(data)) FROM counts" | tail -1)
file=$(stat -c %s "$d/t.db")
echo "| storage of the same 10,000 steps | bytes | bytes / cell |"
echo "|---|---|---|"
awk -v b="$chb" -v c="$cells" 'BEGIN{ printf "| ClickHouse counts (Array(UInt32), LZ4, one part after OPTIMIZE FINAL) | %d | %.3f |\n", b, b / c }'
awk -v b="$rb" -v c="$cells" 'BEGIN{ printf "| ClickHouse counts_rollup (100 steps per row) | %d | %.3f |\n", b, b / c }'
awk -v b="$blob" -v c="$cells" 'BEGIN{ printf "| SQLite counts blobs (Rice) | %d | %.3f |\n", b, b / c }'
awk -v b="$file" -v c="$cells" 'BEGIN{ printf "| SQLite file | %d | %.3f |\n", b, b / c }'
echo
echo "The push parses RowBinary on the server; clickhouse-client parses it on the client and"
echo "sends compressed native blocks, so the server does less per row.  Larger batches make"
echo "fewer parts for the server to merge.  A ClickHouse cell (LZ4 over uint32, no codecs in"
echo "18.16) takes about 2.7x a Rice-coded SQLite cell; the rollup is 1/40 of full resolution."
