#!/bin/sh
# Hostile databases, wrong tables: counts with other columns, no steps
# table, a corrupt deployed placement (tests/cli/hostile.sh says what each
# reading command must do); the messages name the table or the layer.
. "$(dirname "$0")/hostile.sh"
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
for v in counts-columns steps-missing deployed-garbage; do
	check $v
done
mt info "$T/db/counts-columns.db" 2>"$T/err"
expect_grep "$T/err" "^moetrace info: '.*counts-columns.db' is not a moetrace trace or is corrupt: table counts lacks column run$"
mt info "$T/db/steps-missing.db" 2>"$T/err"
expect_grep "$T/err" "^moetrace info: '.*steps-missing.db' is not a moetrace trace or is corrupt: no table steps$"
mt top --snapshot "$T/db/deployed-garbage.db" >"$T/out" 2>"$T/err"
expect_grep "$T/err" "^moetrace top: deployed placement of layer 0 is corrupt: 7 bytes for 4 ranks x 3 slots in '.*deployed-garbage.db'"
[ ! -s "$T/out" ] || fail "top --snapshot printed a frame of a corrupt trace"
finish
