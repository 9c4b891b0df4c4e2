# import -> info -> balance on a hand-made trace whose answers are known.
. "$(dirname "$0")/lib.sh"

# 1 layer, 4 experts, 2 ranks x 2 slots: static puts experts 0,1 on rank 0
# and 2,3 on rank 1.  Step 0: [8,4,2,2] -> loads 12,4 -> imbalance 1.5.
# Step 1: [5,5,6,4] -> loads 10,10 -> 1.0.  Window: [13,9,8,6] -> 22,14 -> 22/18.
cat >"$T/t.csv" <<'CSV'
step,layer,expert,tokens,phase
0,0,0,8,prefill
0,0,1,4,prefill
0,0,2,2,prefill
0,0,3,2,prefill
1,0,0,5,decode
1,0,1,5,decode
1,0,2,6,decode
1,0,3,4,decode
CSV
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run hand --topk 2 --ranks 2 --slots 2
expect_status 0 mt info "$T/db"
expect_grep "$T/out" "run 1 'hand'"
expect_grep "$T/out" "1 MoE layers x 4 experts, top-2"
expect_grep "$T/out" "2 ranks x 2 slots \\(0 redundant\\)"
expect_grep "$T/out" "steps +2 \\(0 \\.\\. 1\\)$"
expect_grep "$T/out" "1 prefill, 1 decode, 0 unknown"
expect_grep "$T/out" "tokens +18"       # (16/2) + (20/2)
expect_status 0 mt info --json "$T/db"
expect_grep "$T/out" '"layers": 1, "experts": 4, "topk": 2'
expect_grep "$T/out" '"prefill_steps": 1, "decode_steps": 1'
expect_grep "$T/out" '"missing_steps": 0,'
# holes in the step numbers (steps the recorder dropped) are counted
printf 'step,layer,expert,tokens\n0,0,0,1\n3,0,1,1\n7,0,2,1\n' >"$T/gaps.csv"
expect_status 0 mt import "$T/gaps.csv" --into "$T/gaps.db" --run gaps
expect_status 0 mt info "$T/gaps.db"
expect_grep "$T/out" "steps +3 \\(0 \\.\\. 7\\), 5 missing$"
# a CSV says nothing of top-k or the layout: "not recorded", never "top-0"
expect_grep "$T/out" "1 MoE layers x 3 experts, top-k not recorded$"
expect_grep "$T/out" "EP layout +not recorded$"
expect_nogrep "$T/out" "top-0"
expect_status 0 mt info --json "$T/gaps.db"
expect_grep "$T/out" '"first_step": 0, "last_step": 7, "missing_steps": 5,'

expect_status 0 mt balance "$T/db"
expect_grep "$T/out" "^ +0 +0 +1\\.222 +1\\.250 +1\\.250 +1\\.495 +0 +36\\.1%"
expect_status 0 mt balance "$T/db" --phase prefill
expect_grep "$T/out" "^ +0 +0 +1\\.500 +1\\.500"
expect_status 0 mt balance "$T/db" --steps 1:1
expect_grep "$T/out" "^ +0 +0 +1\\.000 +1\\.000"
# more ranks than experts per rank: 4 ranks x 1 slot: loads 13,9,8,6 -> 13/9
expect_status 0 mt balance "$T/db" --ranks 4 --slots 1
expect_grep "$T/out" "^ +0 +0 +1\\.444"
expect_status 2 mt balance "$T/db" --ranks 3 --slots 1
expect_grep "$T/err" "cannot hold 4 experts"
expect_status 2 mt balance "$T/db" --steps 5:9
expect_grep "$T/err" "no steps"
expect_status 2 mt balance "$T/db" --run nosuch
expect_grep "$T/err" "no run named 'nosuch'"
# reading commands never write: a read-only file works
chmod a-w "$T/db"
expect_status 0 mt info "$T/db"
expect_status 0 mt balance "$T/db"
exit 0
