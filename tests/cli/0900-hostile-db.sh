#!/bin/sh
# Hostile databases (and shards given to merge): a truncated trace, files that are not SQLite or not a
# trace, a schema version from the future, the right tables with wrong
# shapes or garbage blobs.  Every reading command must report a clear error
# ("moetrace CMD: ...") with exit status 2 (bad input: docs/cli.md), never
# crash (a signal, exit >= 128, or a sanitizer report), and never change
# the file it was asked to read.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
mt gen --help >/dev/null 2>&1 || skip "moetrace gen is not built"

# Known gaps (variant:command), reported and not failed when
# MOETRACE_HOSTILE_STRICT=0; none is open (docs/robustness.md).
KNOWN=""
strict=${MOETRACE_HOSTILE_STRICT:-1}
# Commands that do not read the damaged part succeed (exit 0): info lists
# metadata (it never decodes counts), replays reads only the replay
# tables, the sql query here reads counts blobs alone, export writes heat
# (not the deployed placement), place (no --current) and render heatmap
# never read the deployed placement.
ALLOW="blob-random:info blob-tag:info blob-text:info blob-count:info layers-fewer:info
deployed-garbage:info blob-random:replays blob-tag:replays blob-text:replays
blob-count:replays layers-fewer:replays experts-negative:replays shape-huge:replays
slots-overflow:replays experts-wrap:replays deployed-garbage:replays
deployed-garbage:sql deployed-garbage:export
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
		want=2
		case " $(echo $ALLOW) " in *" $v:$cmd "*) want=0 ;; esac
		problem=""
		# a signal, a sanitizer report, or valgrind's (make check-valgrind)
		if [ $rc -ge 128 ] || grep -Eq 'Sanitizer|runtime error:|^==[0-9]+== ' "$T/o/stderr"; then
			problem="crashed (exit $rc)"
		elif [ $rc -ne $want ]; then
			problem="exited $rc, expected $want"
		fi
		if [ -z "$problem" ] && [ $rc -ne 0 ] && ! grep -Eq "^moetrace $cmd: ." "$T/o/stderr"; then
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
# 2^32 + 8: the low 32 bits are the run's real 8 experts
variant experts-wrap <<'EOF'
UPDATE runs SET experts = 4294967304;
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
for v in layers-fewer experts-negative shape-huge slots-overflow experts-wrap counts-columns \
	steps-missing deployed-garbage; do
	check $v
done

# the messages name what is wrong, and where
q="SELECT count(*), sum(tokens) FROM expert_heat"
mt sql "$T/db/blob-count.db" "$q" 2>"$T/err"
expect_grep "$T/err" "^moetrace sql: expert_heat: counts of run 1 step 7 layer 0: 3 values, the run has 8 experts"
mt sql "$T/db/layers-fewer.db" "$q" 2>"$T/err"
expect_grep "$T/err" "^moetrace sql: expert_heat: counts of run 1 step 0 layer 3: the run has 3 layers"
mt sql "$T/db/blob-count.db" "SELECT * FROM heat_window(1, 0)" 2>"$T/err"
expect_grep "$T/err" "heat_window: counts of run 1 step 7 layer 0: 3 values, the run has 8 experts"
for v in experts-negative shape-huge slots-overflow experts-wrap; do
	mt sql "$T/db/$v.db" "$q" 2>"$T/err"
	expect_grep "$T/err" "^moetrace sql: expert_heat: run 1 has an impossible shape"
done
mt info "$T/db/counts-columns.db" 2>"$T/err"
expect_grep "$T/err" "^moetrace info: '.*counts-columns.db' is not a moetrace trace or is corrupt: table counts lacks column run$"
mt info "$T/db/steps-missing.db" 2>"$T/err"
expect_grep "$T/err" "^moetrace info: '.*steps-missing.db' is not a moetrace trace or is corrupt: no table steps$"
mt top --snapshot "$T/db/deployed-garbage.db" >"$T/out" 2>"$T/err"
expect_grep "$T/err" "^moetrace top: deployed placement of layer 0 is corrupt: 7 bytes for 4 ranks x 3 slots in '.*deployed-garbage.db'"
[ ! -s "$T/out" ] || fail "top --snapshot printed a frame of a corrupt trace"

[ $failures -eq 0 ] || fail "$failures commands misbehaved on hostile databases"
[ $known_gaps -eq 0 ] || echo "$known_gaps known gaps (docs/robustness.md)" >&2
exit 0
