#!/bin/sh
# Hostile databases, a step's phase none of 0 (unknown), 1 (prefill) and
# 2 (decode): 7, -1 (a shift past a mask's width) or text.  Every command
# that reads the steps refuses the trace as corrupt, naming the step
# (tests/cli/hostile.sh says what each reading command must do); a phase
# of 7 was read, and exported, as "unknown".
. "$(dirname "$0")/hostile.sh"
# info counts phases in SQL, replays reads the replay tables, the sql
# query reads counts blobs alone: none reads a step's phase
for v in phase-seven phase-negative phase-text; do
	ALLOW="$ALLOW $v:info $v:replays $v:sql"
done
variant phase-seven <<'EOF2'
UPDATE steps SET phase = 7 WHERE step = 5;
EOF2
variant phase-negative <<'EOF2'
UPDATE steps SET phase = -1 WHERE step = 5;
EOF2
variant phase-text <<'EOF2'
UPDATE steps SET phase = 'decode' WHERE step = 5;
EOF2
for v in phase-seven phase-negative phase-text; do
	check $v
done
mt export "$T/db/phase-seven.db" --format csv -o "$T/o/x.csv" 2>"$T/err"
expect_grep "$T/err" "^moetrace export: .*step 5: phase 7 in '.*phase-seven.db' is not 0 \\(unknown\\), 1 \\(prefill\\) or 2 \\(decode\\): corrupt database\\?$"
[ ! -e "$T/o/x.csv" ] || fail "export wrote a file of a corrupt trace"
mt balance "$T/db/phase-text.db" 2>"$T/err"
expect_grep "$T/err" "^moetrace balance: step 5: phase decode in '.*phase-text.db' is not 0"
finish
