#!/bin/sh
# balance: a layer that received no token in the window (real traces have
# them: Mixtral's last tokens lack some layers) has no hottest expert, so its
# row shows '-' for hottest and share instead of expert 0 with 0.0%; the
# other layers keep their hottest expert and its share.
. "$(dirname "$0")/lib.sh"
# 3 layers x 4 experts, 2 steps; layer 1 gets no token, in layer 2 the hottest
# expert is 0 (so '0' for an empty layer cannot pass for a real answer)
cat >"$T/t.csv" <<'CSV'
step,layer,expert,tokens
0,0,2,6
0,0,3,2
0,2,0,5
0,2,1,3
1,0,2,4
1,0,1,4
1,2,0,7
1,2,3,1
CSV
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 2 --slots 2
expect_status 0 mt balance "$T/db"
awk '$1 == "0" && NF == 8' "$T/out" >"$T/l0"
awk '$1 == "1" && NF == 8' "$T/out" >"$T/l1"
awk '$1 == "2" && NF == 8' "$T/out" >"$T/l2"
# layer 0: expert 2 has 10 of 16 tokens; layer 2: expert 0 has 12 of 16
expect_grep "$T/l0" " 2  62\.5%$"
expect_grep "$T/l2" " 0  75\.0%$"
expect_grep "$T/l1" " - +-$"
expect_nogrep "$T/l1" "%"
# the same range cut to one step: layer 1 still empty, layer 0 from step 1
expect_status 0 mt balance "$T/db" --steps 1:1
awk '$1 == "0" && NF == 8' "$T/out" >"$T/l0"
awk '$1 == "1" && NF == 8' "$T/out" >"$T/l1"
expect_grep "$T/l0" " [12]  50\.0%$"
expect_grep "$T/l1" " - +-$"
