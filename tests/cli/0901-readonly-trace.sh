#!/bin/sh
# A trace the user may not write: a read-only file, and a file in a
# read-only directory.  Reading commands read it without changing it (in a
# read-only directory SQLite cannot create the WAL index, and the store
# opens the file as immutable); writing commands fail with a clear error
# and leave the file as it was; nothing is created in a read-only
# directory.  A trace whose -wal still holds frames cannot be read there
# (the frames would be invisible): every reader says so, naming it.  As
# root, permissions do not bind, so the commands run as user nobody
# (setpriv).
. "$(dirname "$0")/lib.sh"
mt gen --help >/dev/null 2>&1 || skip "moetrace gen is not built"
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
if [ "$(id -u)" = 0 ]; then
	command -v setpriv >/dev/null || skip "running as root without setpriv"
	as_user() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
	chmod 755 "$T"
	# user nobody must reach $T through the directory holding it (the
	# runner gives each test a private TMPDIR): let it pass, no more
	chmod o+x "$(dirname "$T")"
else
	as_user() { "$@"; }
fi
as_user test -x "$MOETRACE" || skip "the binary is not reachable for user nobody"

expect_status 0 mt gen --model mixtral-8x7b --steps 24 --ranks 4 --slots 3 -q "$T/good.db"
printf 'step,layer,expert,tokens\n0,0,0,1\n' >"$T/t.csv"
mkdir -p "$T/o" "$T/rw" "$T/ro"
chmod 777 "$T/o" "$T/rw"

# reads CASE DB: every reading command; exit 0 wanted when $want_ok
reads() {
	case_=$1 db=$2
	for cmd in info balance place compare replay replays render sql top export; do
		case $cmd in
		replay) set -- replay "$db" --no-store --window 8 --interval 8 ;;
		render) set -- render -o "$T/o/h.png" "$db" heatmap ;;
		sql) set -- sql "$db" "SELECT count(*), sum(tokens) FROM expert_heat" ;;
		top) set -- top --snapshot "$db" ;;
		export) set -- export "$db" --format csv -o "$T/o/x.csv" ;;
		*) set -- "$cmd" "$db" ;;
		esac
		as_user "$MOETRACE" "$@" >"$T/o/stdout" 2>"$T/o/stderr"
		rc=$?
		if [ $rc -ge 128 ] || grep -Eq 'Sanitizer|runtime error:' "$T/o/stderr"; then
			cat "$T/o/stderr" >&2
			fail "$case_: moetrace $cmd crashed (exit $rc)"
		fi
		if [ "$want_ok" = 1 ] && [ $rc -ne 0 ]; then
			cat "$T/o/stderr" >&2
			fail "$case_: moetrace $cmd cannot read a read-only trace (exit $rc)"
		fi
		if [ $rc -ne 0 ]; then
			grep -Eq "^moetrace $cmd: .*$(basename "$db")" "$T/o/stderr" || {
				cat "$T/o/stderr" >&2
				fail "$case_: moetrace $cmd failed without naming the trace"
			}
		fi
		[ "$(cksum <"$db")" = "$sum" ] || fail "$case_: moetrace $cmd changed the trace"
	done
}

# writes CASE DB: writing commands fail, clearly, and change nothing
writes() {
	case_=$1 db=$2
	for w in gen import replay sql; do
		case $w in
		gen) set -- gen --model mixtral-8x7b --steps 4 --run more -q "$db" ;;
		import) set -- import "$T/t.csv" --into "$db" --run more ;;
		replay) set -- replay "$db" --window 8 --interval 8 ;;
		sql) set -- sql --write "$db" "DELETE FROM steps" ;;
		esac
		as_user "$MOETRACE" "$@" >"$T/o/stdout" 2>"$T/o/stderr"
		rc=$?
		[ $rc -ge 1 ] && [ $rc -lt 128 ] || {
			cat "$T/o/stderr" >&2
			fail "$case_: moetrace $w on a read-only trace exited $rc"
		}
		grep -Eq "^moetrace $w: .*(read-?only|unable to open|cannot)" "$T/o/stderr" || {
			cat "$T/o/stderr" >&2
			fail "$case_: moetrace $w: no clear error"
		}
		[ "$(cksum <"$db")" = "$sum" ] || fail "$case_: moetrace $w changed the trace"
		# the file is read-only, not the way it was opened
		[ $w != sql ] || ! grep -q "add --write" "$T/o/stderr" ||
			fail "$case_: sql --write is told to add --write"
	done
}

# ---- a read-only file in a writable directory: reads work
cp "$T/good.db" "$T/rw/t.db"
chmod 444 "$T/rw/t.db"
sum=$(cksum <"$T/rw/t.db")
want_ok=1 reads "read-only file" "$T/rw/t.db"
writes "read-only file" "$T/rw/t.db"
as_user "$MOETRACE" sql "$T/rw/t.db" "SELECT count(*) FROM steps" >"$T/o/n" ||
	fail "the read-only trace does not read after the failed writes"
expect_grep "$T/o/n" "^ *24$"

# ---- a trace in a read-only directory: SQLite cannot create the WAL
# index beside it; without frames in a -wal the file is the whole trace
cp "$T/good.db" "$T/ro/t.db"
chmod 555 "$T/ro"
sum=$(cksum <"$T/ro/t.db")
want_ok=1 reads "read-only directory" "$T/ro/t.db"
as_user "$MOETRACE" sql "$T/ro/t.db" "SELECT count(*) FROM steps" >"$T/o/n" ||
	fail "the trace in a read-only directory does not read"
expect_grep "$T/o/n" "^ *24$"
writes "read-only directory" "$T/ro/t.db"
ls -a "$T/ro" >"$T/o/ls"
printf '.\n..\nt.db\n' | cmp -s - "$T/o/ls" || fail "files appeared in the read-only directory: $(ls "$T/ro")"
as_user "$MOETRACE" gen --model mixtral-8x7b --steps 4 -q "$T/ro/new.db" 2>"$T/o/stderr" &&
	fail "gen created a trace in a read-only directory"
expect_grep "$T/o/stderr" "^moetrace gen: cannot open '.*new.db'"
[ ! -e "$T/ro/new.db" ] || fail "gen left new.db in a read-only directory"
chmod 755 "$T/ro"

# ---- a read-only directory with committed frames in the -wal: the file
# alone misses them, so every reader refuses, saying why and naming it.
# The frames: a connection that never checkpoints deletes steps 12..23,
# and its files are copied while it is open.
mkdir -p "$T/walro"
cp "$T/good.db" "$T/w.db"
python3 - "$T/w.db" "$T/walro/t.db" <<'EOF' || skip "cannot build a trace with WAL frames"
import shutil, sqlite3, sys
src, dst = sys.argv[1], sys.argv[2]
c = sqlite3.connect(src)
assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("DELETE FROM steps WHERE step >= 12")
c.commit()
shutil.copy(src, dst)
shutil.copy(src + "-wal", dst + "-wal")
c.close()
EOF
[ -s "$T/walro/t.db-wal" ] || fail "the -wal copy holds no frames"
chmod 555 "$T/walro"
sum=$(cksum <"$T/walro/t.db")
for cmd in info balance sql top; do
	case $cmd in
	sql) set -- sql "$T/walro/t.db" "SELECT count(*) FROM steps" ;;
	top) set -- top --snapshot "$T/walro/t.db" ;;
	*) set -- "$cmd" "$T/walro/t.db" ;;
	esac
	as_user "$MOETRACE" "$@" >"$T/o/stdout" 2>"$T/o/stderr"
	rc=$?
	[ $rc -eq 1 ] || {
		cat "$T/o/stderr" >&2
		fail "$cmd: a WAL with frames in a read-only directory: exit $rc, expected 1"
	}
	expect_grep "$T/o/stderr" "^moetrace $cmd: cannot read '.*walro/t.db': its write-ahead log '.*t.db-wal' holds changes not yet in the file"
	expect_grep "$T/o/stderr" "make the directory writable"
	[ "$(cksum <"$T/walro/t.db")" = "$sum" ] || fail "$cmd changed the trace"
done
ls -a "$T/walro" >"$T/o/ls"
printf '.\n..\nt.db\nt.db-wal\n' | cmp -s - "$T/o/ls" ||
	fail "files appeared in the read-only directory: $(ls "$T/walro")"
# a leftover rollback journal beside it would be ignored by an immutable
# open: refused too
mkdir -p "$T/jro"
cp "$T/good.db" "$T/jro/t.db"
head -c 1024 /dev/urandom >"$T/jro/t.db-journal"
chmod 555 "$T/jro"
as_user "$MOETRACE" info "$T/jro/t.db" >"$T/o/stdout" 2>"$T/o/stderr"
rc=$?
[ $rc -eq 1 ] || { cat "$T/o/stderr" >&2; fail "info beside a rollback journal in a read-only directory exited $rc"; }
expect_grep "$T/o/stderr" "^moetrace info: cannot read '.*jro/t.db': a write to it was interrupted"
chmod 755 "$T/jro"
# once the directory is writable the frames are read: 12 steps are left
chmod 777 "$T/walro"
as_user "$MOETRACE" sql "$T/walro/t.db" "SELECT count(*) FROM steps" >"$T/o/n" 2>"$T/o/stderr" ||
	fail "the trace with WAL frames does not read in a writable directory: $(cat "$T/o/stderr")"
expect_grep "$T/o/n" "^ *12$"
exit 0
