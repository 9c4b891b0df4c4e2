# The loadable extension in the stock sqlite3 shell: same answers as
# moetrace sql, malformed blobs are errors, the shell does not crash.
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
mt import --help >/dev/null 2>&1 || skip "moetrace import is not built"
ext="$(dirname "$MOETRACE")/moetrace_sqlite.so"
[ -f "$ext" ] || ext="$MOETRACE_TOP/moetrace_sqlite.so"
[ -f "$ext" ] || fail "no moetrace_sqlite.so next to $MOETRACE or in $MOETRACE_TOP"
cp "$ext" "$T/moetrace_sqlite.so"

awk 'BEGIN { print "step,layer,expert,tokens";
	for (s = 0; s < 10; s++) for (l = 0; l < 2; l++) for (e = 0; e < 4; e++)
		print s "," l "," e "," (s * 3 + e * 5 + l) % 11 }' >"$T/t.csv"
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run t --ranks 2 --slots 2

q="SELECT layer, expert, sum(tokens) FROM expert_heat WHERE step BETWEEN 2 AND 6 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT layer, expert, tokens FROM layer_heat ORDER BY 1, 2;
SELECT step, layer, round(imbalance, 9) FROM layer_imbalance ORDER BY 1, 2;
SELECT count(*) FROM device_load;"
mt sql --format csv "$T/db" "$q" | grep -v '^[a-z(]' | grep . >"$T/want" || fail "moetrace sql failed"
# .load by file name without an entry point: the shell derives it
(cd "$T" && sqlite3 -bail -csv db ".load ./moetrace_sqlite" "$q") >"$T/got" 2>"$T/err" ||
	fail "sqlite3 .load failed: $(cat "$T/err")"
same_file "$T/want" "$T/got"
# 8 cells + 8 cells + 20 (step, layer) + 1 count
grep -c . "$T/got" | grep -qx 37 || fail "expected 37 rows, got $(grep -c . "$T/got")"

# malformed blob: an error message and a living shell
cp "$T/db" "$T/bad.db"
sqlite3 "$T/bad.db" "UPDATE counts SET data = x'01ffff' WHERE step = 3 AND layer = 1"
# (the shell reads SQL from standard input and goes on after an error)
printf '%s\n' ".load ./moetrace_sqlite" "SELECT count(*) FROM expert_heat;" \
	"SELECT counts_sum(data) FROM counts WHERE step = 3 AND layer = 1;" \
	"SELECT * FROM heat_window(1, 1);" "SELECT 'alive';" >"$T/bad.sql"
(cd "$T" && sqlite3 bad.db <bad.sql) >"$T/out" 2>"$T/err"
rc=$?
[ $rc -lt 128 ] || fail "sqlite3 died with status $rc"
expect_grep "$T/err" "expert_heat: malformed counts blob at run 1 step 3 layer 1"
expect_grep "$T/err" "counts_sum: malformed counts blob"
expect_grep "$T/err" "heat_window: malformed counts blob in run 1 layer 1"
expect_grep "$T/out" "^alive$"
