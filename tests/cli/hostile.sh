# Sourced by tests/cli/09*-hostile-db-*.sh, one part each (they run in
# parallel).  Hostile databases (and shards given to merge): a truncated
# trace, files that are not SQLite or not a trace, a schema version from
# the future, the right tables with wrong shapes or garbage blobs.  Every reading command must report a clear error
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
# (not the deployed placement), and render heatmap never reads the deployed
# placement (place does: its current placement is the one in force).
ALLOW="blob-random:info blob-tag:info blob-text:info blob-count:info layers-fewer:info
deployed-garbage:info blob-random:replays blob-tag:replays blob-text:replays
blob-count:replays layers-fewer:replays experts-negative:replays shape-huge:replays
slots-overflow:replays experts-wrap:replays deployed-garbage:replays
deployed-garbage:sql deployed-garbage:export
deployed-garbage:render"

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
		merge) # two shards: the variant and a copy (the same file twice is refused)
			cp "$db" "$T/o/copy.db" || fail "cannot copy $db"
			set -- merge --sum "$T/o/m.db" "$db" "$T/o/copy.db" ;;
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

# finish: the part fails if any command misbehaved
finish() {
	[ $failures -eq 0 ] || fail "$failures commands misbehaved on hostile databases"
	[ $known_gaps -eq 0 ] || echo "$known_gaps known gaps (docs/robustness.md)" >&2
	exit 0
}
