#!/bin/sh
# No command writes its output over the trace it reads: export, place,
# render and report refuse an -o that is the database (by the same name,
# another spelling, a symbolic link or a hard link) or one of the files
# SQLite keeps beside it (-wal, -shm, -journal), with exit 2 before
# anything is written: the database is left byte for byte, and no file
# appears.  export -o x.db used to replace x.db with CSV text.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 20 --ranks 4 --slots 3 -q "$T/x.db"
mkdir "$T/d" "$T/rep"
ln -s ../x.db "$T/d/link.db"
ln "$T/x.db" "$T/hard.png"
ln -s ../x.db "$T/rep/report.pdf"
sum=$(cksum <"$T/x.db")
find "$T" ! -name 'ls.*' | sort >"$T/ls.before"
refused() { # PATTERN COMMAND...
	_p=$1; shift
	expect_status 2 mt "$@"
	expect_grep "$T/err" "$_p"
	[ ! -s "$T/out" ] || fail "'$*' printed on stdout"
	[ "$(cksum <"$T/x.db")" = "$sum" ] || fail "'$*' changed x.db"
}
is="is the trace '$T/x.db' this command reads"
refused "^moetrace export: output '$T/x.db' $is$" export "$T/x.db" --format csv -o "$T/x.db"
refused "^moetrace export: output '$T/d/../x.db' $is$" export "$T/x.db" --format jsonl -o "$T/d/../x.db"
refused "^moetrace export: output '$T/d/link.db' \(a link to '$T/d/../x.db'\) $is$" \
	export "$T/x.db" --format csv -o "$T/d/link.db"
refused "^moetrace export: output '$T/x.db' is the trace '$T/d/link.db' this command reads$" \
	export "$T/d/link.db" --format csv -o "$T/x.db"
refused "^moetrace export: output '$T/x.db-wal' is the write-ahead log of the trace '$T/x.db' this command reads$" \
	export "$T/x.db" --format csv -o "$T/x.db-wal"
refused "output '$T/x.db-journal' is the rollback journal of the trace" \
	export "$T/x.db" --format csv --sparse -o "$T/x.db-journal"
refused "output '$T/x.db-shm' is the shared-memory index of the trace" \
	export "$T/x.db" --placement deployed --format sglang -o "$T/x.db-shm"
refused "^moetrace export: output '$T/x.db' $is$" \
	export "$T/x.db" --placement deployed --format trtllm -o "$T/x.db"
refused "^moetrace place: output '$T/x.db' $is$" place "$T/x.db" --algo eplb -o "$T/x.db" --format sglang
refused "^moetrace place: output '$T/d/link.db' \(a link to '$T/d/../x.db'\) $is$" \
	place "$T/x.db" -o "$T/d/link.db"
refused "^moetrace render: output '$T/hard.png' $is$" render "$T/x.db" heatmap -o "$T/hard.png"
refused "^moetrace report: output '$T/x.db' $is$" report "$T/x.db" -o "$T/x.db"
refused "^moetrace report: output '$T/x.db-wal' is the write-ahead log" report "$T/x.db" -o "$T/x.db-wal"
refused "^moetrace report: output '$T/rep/report.pdf' \(a link to '$T/rep/../x.db'\) $is$" \
	report "$T/x.db" -o "$T/rep"
find "$T" ! -name 'ls.*' | sort >"$T/ls.after"
cmp -s "$T/ls.before" "$T/ls.after" || fail "a refused command left a file: $(diff "$T/ls.before" "$T/ls.after")"

# place --heat FILE: the heat file is the trace it reads
expect_status 0 mt place "$T/x.db" --json >"$T/place.json"
printf '{"layers": 1, "experts": 4, "heat": [[4, 3, 2, 1]]}\n' >"$T/heat.json"
hsum=$(cksum <"$T/heat.json")
expect_status 2 mt place --heat "$T/heat.json" --ranks 2 --slots 2 -o "$T/heat.json"
expect_grep "$T/err" "^moetrace place: output '$T/heat.json' is the trace '$T/heat.json' this command reads$"
[ "$(cksum <"$T/heat.json")" = "$hsum" ] || fail "place -o overwrote its heat file"
