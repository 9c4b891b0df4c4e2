#!/bin/sh
# Hostile databases (and shards given to merge): a truncated trace, files that are not SQLite or not a
# trace, a schema version from the future, the right tables with wrong
# shapes or garbage blobs.  Every reading command must report a clear error
# ("moetrace CMD: ...") and exit 1 or 2, never crash (a signal, exit >= 128,
# or a sanitizer report), and never change the file it was asked to read.
# KNOWN lists variant:command pairs that still misbehave (docs/robustness.md
# names each); they are reported, not failed, and the file must still be
# unchanged.  MOETRACE_HOSTILE_STRICT=1 fails on them too.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
mt gen --help >/dev/null 2>&1 || skip "moetrace gen is not built"

# Known gaps (variant:command), one root cause per line:
# runs rows are not checked against the schema's limits when read;
# expert_heat does not check a blob's count against the run's experts;
# a deployed blob of the wrong size reads as "no deployed placement";
# info does not notice a counts table without its columns.
KNOWN="experts-negative:sql shape-huge:sql slots-overflow:sql
blob-count:sql layers-fewer:sql
counts-columns:info deployed-garbage:top"
strict=${MOETRACE_HOSTILE_STRICT:-0}
# place (no --current) and render heatmap never read the deployed placement.
# Commands that do not read the damaged part may succeed: info and replays
# list metadata (they never decode counts), replays reads only the replay
# tables, the sql query here reads counts blobs alone, export writes heat
# (not the deployed placement).
ALLOW="blob-random:info blob-tag:info blob-text:info blob-count:info layers-fewer:info
deployed-garbage:info blob-random:replays blob-tag:replays blob-text:replays
blob-count:replays layers-fewer:replays experts-negative:replays shape-huge:replays
slots-overflow:replays counts-columns:replays steps-missing:replays deployed-garbage:replays
steps-missing:sql deployed-garbage:sql deployed-garbage:export
deployed-garbage:place deployed-garbage:render"

expect_status 0 mt gen --model mixtral-8x7b --steps 24 --ranks 4 --slots 3 -q "$T/good.db"
mkdir -p "$T/db" "$T/o"
known_gaps=0 failures=0

# variant NAME: $T/db/NAME.db from good.db and the SQL on stdin
variant() {
	cp "$T/good.db" "$T/db/$1.db"
	sqlite3 "$T/db/$1.db" || fail "cannot build variant $1"
}

# check NAME: every reading command on $T/db/NAME.db
check() {
	v=$1 db="$T/db/$1.db"
	sum=$(cksum <"$db")
	ls -a "$T/db" >"$T/ls.before"
	for cmd in info balance place compare replay replays render sql top export merge; do
		case $cmd in
		replay) set -- replay "$db" --no-store --window 8 --interval 8 ;;
		render) set -- render -o "$T/o/h.png" "$db" heatmap ;;
		sql) set -- sql "$db" "SELECT count(*), sum(tokens) FROM expert_heat" ;;
		top) set -- top --snapshot "$db" ;;
		export) set -- export "$db" --format csv -o "$T/o/x.csv" ;;
		merge) set -- merge --sum "$T/o/m.db" "$db" "$db" ;;
		*) set -- "$cmd" "$db" ;;
		esac
		rm -f "$T/o/m.db"
		mt "$@" >"$T/o/stdout" 2>"$T/o/stderr"
		rc=$?
		[ $rc -eq 0 ] || [ ! -e "$T/o/m.db" ] || fail "$v: a failed merge left its output"
		problem=""
		# a signal, a sanitizer report, or valgrind's (make check-valgrind)
		if [ $rc -ge 128 ] || grep -Eq 'Sanitizer|runtime error:|^==[0-9]+== ' "$T/o/stderr"; then
			problem="crashed (exit $rc)"
		elif [ $rc -eq 0 ]; then
			case " $(echo $ALLOW) " in
			*" $v:$cmd "*) ;;
			*) problem="exited 0" ;;
			esac
		elif ! grep -Eq "^moetrace $cmd: ." "$T/o/stderr"; then
			problem="exited $rc without a 'moetrace $cmd:' message"
		fi
		[ "$(cksum <"$db")" = "$sum" ] || fail "$v: moetrace $cmd changed the database"
		if [ -n "$problem" ]; then
			case " $(echo $KNOWN) " in
			*" $v:$cmd "*)
				if [ "$strict" = 1 ]; then
					cat "$T/o/stderr" >&2
					fail "$v: moetrace $cmd $problem (known gap)"
				fi
				known_gaps=$((known_gaps + 1))
				echo "known gap: $v: moetrace $cmd $problem" >&2
				;;
			*)
				head -n 8 "$T/o/stderr" >&2
				echo "FAIL: $v: moetrace $cmd $problem" >&2
				failures=$((failures + 1))
				;;
			esac
		fi
	done
	# reading leaves no new file beside the trace except SQLite's -wal/-shm
	ls -a "$T/db" | grep -Ev -- '-(wal|shm)$' >"$T/ls.after"
	grep -Ev -- '-(wal|shm)$' "$T/ls.before" | cmp -s - "$T/ls.after" ||
		fail "$v: reading left new files: $(ls "$T/db")"
	rm -f "$T/db/$v.db-wal" "$T/db/$v.db-shm"
}

# ---- files that are not a (whole) trace
# WAL content is checkpointed on close, so good.db is the whole trace.
size=$(wc -c <"$T/good.db")
head -c $((size / 2)) "$T/good.db" >"$T/db/truncated-half.db"
head -c 4096 "$T/good.db" >"$T/db/truncated-page.db"
head -c 60 "$T/good.db" >"$T/db/truncated-header.db"
printf 'step,layer,expert,tokens\n0,0,0,1\n' >"$T/db/not-sqlite.db"
head -c 8192 /dev/urandom >"$T/db/random.db"
: >"$T/db/empty.db"
sqlite3 "$T/db/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1)"
variant future <<'EOF'
PRAGMA user_version = 99;
EOF
for v in truncated-half truncated-page truncated-header not-sqlite random empty other future; do
	check $v
done
mt info "$T/db/future.db" 2>"$T/err"
expect_grep "$T/err" "schema version 99, newer than this moetrace knows"
mt info "$T/db/not-sqlite.db" 2>"$T/err"
expect_grep "$T/err" "not a SQLite database"
mt info "$T/db/other.db" 2>"$T/err"
expect_grep "$T/err" "not a moetrace trace"

# ---- right tables, garbage blobs (a counts blob is tag byte + varint n + data)
variant blob-random <<'EOF'
UPDATE counts SET data = randomblob(9) WHERE step = 5 AND layer = 3;
EOF
variant blob-tag <<'EOF'
UPDATE counts SET data = X'07' || data WHERE step = 6;
EOF
variant blob-text <<'EOF'
UPDATE counts SET data = 'hello' WHERE step = 9 AND layer = 1;
EOF
# a well-formed blob of 3 counts in a run of 8 experts
variant blob-count <<'EOF'
UPDATE counts SET data = X'0003010000000200000003000000' WHERE step = 7 AND layer = 0;
EOF
for v in blob-random blob-tag blob-text blob-count; do
	check $v
done
mt balance "$T/db/blob-random.db" 2>"$T/err"
expect_grep "$T/err" "step 5 layer 3: malformed counts blob"

# ---- right tables, wrong shapes
variant layers-fewer <<'EOF'
UPDATE runs SET layers = 3;
EOF
variant experts-negative <<'EOF'
PRAGMA ignore_check_constraints = 1;
UPDATE runs SET experts = -5;
EOF
variant shape-huge <<'EOF'
UPDATE runs SET layers = 2000000000, experts = 2000000000;
EOF
variant slots-overflow <<'EOF'
UPDATE runs SET ranks = 2000000000, slots = 2000000000;
EOF
variant counts-columns <<'EOF'
DROP TABLE counts;
CREATE TABLE counts (x);
EOF
variant steps-missing <<'EOF'
DROP TABLE steps;
EOF
variant deployed-garbage <<'EOF'
WITH RECURSIVE l(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM l WHERE x < 31)
INSERT INTO deployed SELECT 1, 0, x, 4, 3,
  CASE WHEN x = 0 THEN randomblob(7) ELSE zeroblob(48) END FROM l;
EOF
for v in layers-fewer experts-negative shape-huge slots-overflow counts-columns steps-missing \
	deployed-garbage; do
	check $v
done

[ $failures -eq 0 ] || fail "$failures commands misbehaved on hostile databases"
[ $known_gaps -eq 0 ] || echo "$known_gaps known gaps (docs/robustness.md)" >&2
exit 0
