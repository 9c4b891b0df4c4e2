#!/bin/sh
# Hostile databases, files that are not a whole trace: truncated copies of
# a trace and a CSV file named .db (tests/cli/hostile.sh says what each
# reading command must do with them).
. "$(dirname "$0")/hostile.sh"
# WAL content is checkpointed on close, so good.db is the whole trace.
size=$(wc -c <"$T/good.db")
head -c $((size / 2)) "$T/good.db" >"$T/db/truncated-half.db"
head -c 4096 "$T/good.db" >"$T/db/truncated-page.db"
head -c 60 "$T/good.db" >"$T/db/truncated-header.db"
printf 'step,layer,expert,tokens\n0,0,0,1\n' >"$T/db/not-sqlite.db"
for v in truncated-half truncated-page truncated-header not-sqlite; do
	check $v
done
mt info "$T/db/not-sqlite.db" 2>"$T/err"
expect_grep "$T/err" "not a SQLite database"
finish
