#!/bin/sh
# Hostile databases, files that are not a trace: random bytes, an empty
# file, a SQLite database of other tables, a schema version from the future
# (tests/cli/hostile.sh says what each reading command must do with them).
. "$(dirname "$0")/hostile.sh"
head -c 8192 /dev/urandom >"$T/db/random.db"
: >"$T/db/empty.db"
sqlite3 "$T/db/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1)"
variant future <<'EOF'
PRAGMA user_version = 99;
EOF
for v in random empty other future; do
	check $v
done
mt info "$T/db/future.db" 2>"$T/err"
expect_grep "$T/err" "schema version 99, newer than this moetrace knows"
mt info "$T/db/other.db" 2>"$T/err"
expect_grep "$T/err" "not a moetrace trace"
finish
