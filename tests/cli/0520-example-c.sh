#!/bin/sh
# examples/engine_loop.c builds against the library under test with only
# <moetrace.h>, runs, and leaves a trace that `moetrace info` reads.
. "$(dirname "$0")/lib.sh"
lib=$(dirname "$MOETRACE")/libmoetrace.a
[ -f "$lib" ] || skip "no libmoetrace.a beside $MOETRACE"
command -v cc >/dev/null || skip "no C compiler"
san=
nm "$lib" 2>/dev/null | grep -q __asan && san="-fsanitize=address,undefined"
make -s -C "$MOETRACE_TOP/examples" OUT="$T/engine_loop" LIBMOETRACE="$lib" \
	CFLAGS="-O1 -g -Werror $san" >"$T/build" 2>&1 || { cat "$T/build"; fail "example does not build"; }
expect_status 0 "$T/engine_loop" "$T/e.db" 300
expect_grep "$T/out" "[0-9]+ steps recorded, [0-9]+ dropped, 1 placement"
# the default drop policy may drop under load: what is stored is what was recorded
rec=$(sed -n 's/.*: \([0-9]*\) steps recorded, \([0-9]*\) dropped.*/\1/p' "$T/out")
drop=$(sed -n 's/.*: \([0-9]*\) steps recorded, \([0-9]*\) dropped.*/\2/p' "$T/out")
[ $((rec + drop)) -eq 300 ] || fail "recorded $rec + dropped $drop != 300"
expect_status 0 mt info "$T/e.db"
expect_grep "$T/out" "engine-loop"
[ "$(sqlite3 "$T/e.db" 'SELECT count(*) FROM steps')" = "$rec" ] || fail "steps missing"
[ "$(sqlite3 "$T/e.db" 'SELECT count(*) FROM counts')" = $((rec * 8)) ] || fail "layers missing"
[ "$(sqlite3 "$T/e.db" 'SELECT count(*) FROM deployed')" = 8 ] || fail "placement missing"

# --help prints its usage and writes no database named --help
cd "$T"
expect_status 0 "$T/engine_loop" --help
expect_grep "$T/out" "^usage: engine_loop"
expect_status 2 "$T/engine_loop" "$T/f.db" many
[ ! -e "$T/--help" ] && [ ! -e "$T/f.db" ] || fail "a refused run of engine_loop wrote a database"
