#!/bin/sh
# Hostile databases, right tables with wrong shapes: fewer layers than the
# counts hold, negative, huge and wrapping expert counts, ranks x slots
# overflowing (tests/cli/hostile.sh says what each reading command must do).
. "$(dirname "$0")/hostile.sh"
variant layers-fewer <<'EOF'
UPDATE runs SET layers = 3;
EOF
variant experts-negative <<'EOF'
PRAGMA ignore_check_constraints = 1;
UPDATE runs SET experts = -5;
EOF
variant shape-huge <<'EOF'
UPDATE runs SET layers = 2000000000, experts = 2000000000;
EOF
variant slots-overflow <<'EOF'
UPDATE runs SET ranks = 2000000000, slots = 2000000000;
EOF
# 2^32 + 8: the low 32 bits are the run's real 8 experts
variant experts-wrap <<'EOF'
UPDATE runs SET experts = 4294967304;
EOF
for v in layers-fewer experts-negative shape-huge slots-overflow experts-wrap; do
	check $v
done
# the messages name what is wrong, and where
q="SELECT count(*), sum(tokens) FROM expert_heat"
mt sql "$T/db/layers-fewer.db" "$q" 2>"$T/err"
expect_grep "$T/err" "^moetrace sql: expert_heat: counts of run 1 step 0 layer 3: the run has 3 layers"
for v in experts-negative shape-huge slots-overflow experts-wrap; do
	mt sql "$T/db/$v.db" "$q" 2>"$T/err"
	expect_grep "$T/err" "^moetrace sql: expert_heat: run 1 has an impossible shape"
done
finish
