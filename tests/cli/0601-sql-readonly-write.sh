# moetrace sql: SQL from standard input, read-only by default, --write as one
# transaction (a failing script leaves nothing behind), clear errors.
. "$(dirname "$0")/lib.sh"

mt import --help >/dev/null 2>&1 || skip "moetrace import is not built"
printf 'step,layer,expert,tokens\n0,0,0,4\n0,0,1,2\n1,0,0,1\n1,0,1,7\n' >"$T/t.csv"
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run t

# SQL on standard input, several statements, comments
printf -- '-- total\nSELECT sum(tokens) AS total FROM expert_heat;\n\nSELECT count(*) AS n FROM steps;\n' >"$T/q.sql"
mt sql --format csv "$T/db" <"$T/q.sql" >"$T/out" 2>"$T/err" || fail "stdin query failed: $(cat "$T/err")"
printf 'total\n14\n\nn\n2\n' >"$T/want"
same_file "$T/want" "$T/out"

# a query given as an argument may open with an SQL comment
expect_status 0 mt sql --format csv "$T/db" "-- the total
SELECT sum(tokens) AS total FROM expert_heat"
printf 'total\n14\n' >"$T/want"
same_file "$T/want" "$T/out"

# read-only by default: the file does not change
cp "$T/db" "$T/before"
expect_status 2 mt sql "$T/db" "DELETE FROM steps"
expect_grep "$T/err" "^moetrace sql: .*readonly.*DELETE FROM steps.*--write"
same_file "$T/before" "$T/db"
expect_status 0 mt sql --format csv "$T/db" "SELECT count(*) FROM steps"
expect_grep "$T/out" "^2$"

# --write: a script that fails half way is rolled back as a whole
expect_status 2 mt sql --write "$T/db" "UPDATE runs SET name = 'renamed'; INSERT INTO steps (run, step) VALUES (1, 0)"
expect_grep "$T/err" "UNIQUE constraint failed"
expect_status 0 mt sql --format csv "$T/db" "SELECT name FROM runs"
expect_grep "$T/out" "^t$"
expect_status 0 mt sql --write "$T/db" "UPDATE runs SET name = 'renamed'"
expect_status 0 mt sql --format csv "$T/db" "SELECT name FROM runs"
expect_grep "$T/out" "^renamed$"

# errors: bad SQL names the statement (exit 2), missing file, no extension loading
expect_status 2 mt sql "$T/db" "SELECT 1; SELEC nothing FROM x"
expect_grep "$T/err" "^moetrace sql: near \"SELEC\": syntax error \\(in: SELEC nothing FROM x\\)"
expect_status 2 mt sql "$T/db" "SELECT * FROM no_such_table"
expect_grep "$T/err" "no such table: no_such_table"
expect_status 2 mt sql "$T/nope.db" "SELECT 1"
expect_grep "$T/err" "cannot open '.*nope.db'"
[ ! -e "$T/nope.db" ] || fail "a missing database was created"
expect_status 2 mt sql "$T/db" "SELECT load_extension('$T/x')"
expect_grep "$T/err" "not authorized"
expect_status 2 mt sql "$T/db"  "SELECT 1" extra
expect_grep "$T/err" "^usage: moetrace sql"

# a malformed blob is an SQL error naming the row, not a crash
expect_status 0 mt sql --write "$T/db" "UPDATE counts SET data = x'0104ff' WHERE step = 1"
expect_status 2 mt sql "$T/db" "SELECT * FROM expert_heat"
expect_grep "$T/err" "malformed counts blob at run 1 step 1 layer 0"
expect_status 2 mt sql "$T/db" "SELECT counts_json(data) FROM counts"
expect_grep "$T/err" "counts_json: malformed counts blob"
