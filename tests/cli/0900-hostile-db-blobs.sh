#!/bin/sh
# Hostile databases, right tables with garbage blobs (a counts blob is tag
# byte + varint n + data): tests/cli/hostile.sh says what each reading
# command must do with them; the messages name the step and layer.
. "$(dirname "$0")/hostile.sh"
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
q="SELECT count(*), sum(tokens) FROM expert_heat"
mt sql "$T/db/blob-count.db" "$q" 2>"$T/err"
expect_grep "$T/err" "^moetrace sql: expert_heat: counts of run 1 step 7 layer 0: 3 values, the run has 8 experts"
mt sql "$T/db/blob-count.db" "SELECT * FROM heat_window(1, 0)" 2>"$T/err"
expect_grep "$T/err" "heat_window: counts of run 1 step 7 layer 0: 3 values, the run has 8 experts"
finish
