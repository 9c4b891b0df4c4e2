#!/bin/sh
# A CSV that another program shortens while `import` reads it (truncated,
# rewritten in place) is refused with exit 1 and a message naming it: the
# importer maps the file, and a page past the new end used to kill it with
# SIGBUS (exit 135), leaving its private DB.new-PID-N files behind.  The
# database, new or existing, is left as it was.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model deepseek-v2-lite --steps 120 --seed 2 --run orig -q "$T/src.db"
expect_status 0 mt export "$T/src.db" --format csv -o "$T/big.csv"

# import FILE into DB in the background; once the file is mapped, cut it to
# 64 kB (the second pass re-reads the pages it gave back from the file)
shrink_while_importing() {
	cp "$T/big.csv" "$T/c.csv"
	"$MOETRACE" import "$T/c.csv" --into "$1" --run cut >"$T/out" 2>"$T/err" &
	pid=$!
	n=0
	until grep -q "$T/c.csv" "/proc/$pid/maps" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || break
		n=$((n + 1))
		[ $n -lt 6000 ] || { kill "$pid"; fail "the import never mapped the file"; }
		sleep 0.01
	done
	truncate -s 65536 "$T/c.csv"
	wait "$pid"
	got=$?
	[ "$got" -eq 1 ] || { cat "$T/out" "$T/err" >&2; fail "import of a shrinking file exited $got, expected 1"; }
	expect_grep "$T/err" "c.csv: the file became shorter while it was read"
}

# a new database: nothing at the path, no private files left
shrink_while_importing "$T/new.db"
[ -z "$(ls "$T" | grep '^new\.db')" ] || { ls "$T" >&2; fail "files left beside the new database"; }

# an existing trace: its run stays whole, no run 'cut'
cp "$T/src.db" "$T/old.db"
before=$(sqlite3 "$T/old.db" "SELECT count(*), sum(length(data)) FROM counts")
shrink_while_importing "$T/old.db"
[ "$(sqlite3 "$T/old.db" "SELECT group_concat(name) FROM runs")" = orig ] || fail "a run was added"
[ "$(sqlite3 "$T/old.db" "SELECT count(*), sum(length(data)) FROM counts")" = "$before" ] || fail "counts changed"
[ "$(sqlite3 "$T/old.db" "PRAGMA integrity_check")" = ok ] || fail "integrity_check"
exit 0
