# Bad input to place: exit 2, a message naming the file, field or option,
# and no output file written.
. "$(dirname "$0")/lib.sh"

cat >"$T/t.csv" <<'CSV'
step,layer,expert,tokens
0,0,0,9
0,0,1,5
0,0,2,3
0,0,3,1
0,1,0,2
0,1,1,2
0,1,2,7
0,1,3,4
CSV
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run bad --ranks 2 --slots 3

# ranks x slots that cannot hold every expert
expect_status 2 mt place "$T/db" --algo static --ranks 1 --slots 3
expect_grep "$T/err" "cannot hold 4 experts"
# --redundant that does not make whole slots: (4 + 1) / 2
expect_status 2 mt place "$T/db" --algo static --ranks 2 --redundant 1
expect_grep "$T/err" "--redundant 1"
expect_grep "$T/err" "not a multiple of 2 ranks"
expect_status 2 mt place "$T/db" --algo static --slots 3 --redundant 2
# heat files: ragged rows, negative values, not JSON
printf '{"heat": [[1, 2, 3, 4], [1, 2, 3]]}' >"$T/ragged.json"
expect_status 2 mt place --heat "$T/ragged.json" --algo static --ranks 2 --slots 2
expect_grep "$T/err" "ragged.json': heat\\[1\\]: 3 experts"
printf '{"heat": [[1, -2, 3, 4]]}' >"$T/neg.json"
expect_status 2 mt place --heat "$T/neg.json" --algo static --ranks 2 --slots 2
expect_grep "$T/err" "neg.json': heat\\[0\\]\\[1\\]: -2 is negative"
printf '{"heat": [[1, 2,\n 3 4]]}' >"$T/broken.json"
expect_status 2 mt place --heat "$T/broken.json" --algo static --ranks 2 --slots 2
expect_grep "$T/err" "broken.json' line 2: not valid JSON"
expect_status 2 mt place --heat "$T/none.json" --algo static
expect_grep "$T/err" "cannot open '.*none.json'"

# placement files that do not match the run
expect_status 0 mt place "$T/db" --algo static -o "$T/ok.json" --format vllm-ascend
expect_status 2 mt place "$T/db" --algo static --ranks 3 --slots 2 --current "$T/ok.json" -o "$T/new.json"
expect_grep "$T/err" "ok.json': layer_list\\[0\\]\\.device_list: 2 devices, the run has 3 ranks"
[ ! -e "$T/new.json" ] || fail "an output file was written after bad input"
expect_status 2 mt place "$T/db" --algo static --ranks 2 --slots 4 --current "$T/ok.json"
expect_grep "$T/err" "device_list\\[0\\]\\.device_expert: 3 entries, the run has 4 slots per rank"
printf '{"physical_to_logical_map": [[0,1,2,3,0,1],[0,1,2,3,0]]}' >"$T/sg.json"
expect_status 2 mt place "$T/db" --algo static --current "$T/sg.json"
expect_grep "$T/err" "sg.json': physical_to_logical_map\\[1\\]: 5 entries"
printf '{"physical_to_logical_map": [[0,1,2,3,0,1],[0,1,2,3,0,7]]}' >"$T/sg2.json"
expect_status 2 mt place "$T/db" --algo static --current "$T/sg2.json"
expect_grep "$T/err" "physical_to_logical_map\\[1\\]\\[5\\]: expert 7 out of range"
printf '{"physical_to_logical_map": [[0,1,2,0,1,2],[0,1,2,3,0,1]]}' >"$T/sg3.json"
expect_status 2 mt place "$T/db" --algo static --current "$T/sg3.json"
expect_grep "$T/err" "sglang layer 0: expert 3 has no slot"
# rows past the last MoE layer: SGLang's trivial rows of dense layers, or
# a map of another, deeper model
printf '{"physical_to_logical_map": [[0,1,2,3,0,1],[0,1,2,3,0,1],[3,2,1,0,3,2]]}' >"$T/sg4.json"
expect_status 2 mt place "$T/db" --algo static --current "$T/sg4.json"
expect_grep "$T/err" "sg4.json': physical_to_logical_map: 3 rows, the run needs 2 \\(one per MoE layer\\) or 2 \\(one per model layer\\); row 2, past the run's last MoE layer, places experts"
printf '{"physical_to_logical_map": [[0,1,2,3,0,1],[0,1,2,3,0,1],[0,1,2,3,0,1]]}' >"$T/sg5.json"
expect_status 0 mt place "$T/db" --algo static --current "$T/sg5.json"
printf 'num_slots: 8\ninitial_global_assignments:\n  0: [0, 1, 2, 3, 0, 1]\n  1: [0, 1, 2, 3, 0, 1]\n' >"$T/lb.yaml"
expect_status 2 mt place "$T/db" --algo static --current "$T/lb.yaml"
expect_grep "$T/err" "lb.yaml': num_slots: 8, the run has 2 ranks x 3 slots = 6"
printf 'initial_global_assignments:\n  0: [0, 1, 2, 3, 0, 1]\n' >"$T/lb2.yaml"
expect_status 2 mt place "$T/db" --algo static --current "$T/lb2.yaml"
expect_grep "$T/err" "initial_global_assignments: 1 layers, the run has 2"
printf '{"experts": []}' >"$T/what.json"
expect_status 2 mt place "$T/db" --algo static --current "$T/what.json"
expect_grep "$T/err" "neither a vllm-ascend expert map"

# options
expect_status 2 mt place "$T/db" --algo nosuch
expect_grep "$T/err" "unknown algorithm 'nosuch'"
expect_status 2 mt place "$T/db" --algo static --quant int2
expect_grep "$T/err" "--quant: 'int2'"
expect_status 2 mt place "$T/db" --algo static --link smoke-signal
expect_grep "$T/err" "--link: unknown link 'smoke-signal'"
expect_status 2 mt place "$T/db" --algo static -o "$T/x" --format onnx
expect_grep "$T/err" "--format: 'onnx'"
expect_status 2 mt place "$T/db" --algo static --layer 2
expect_grep "$T/err" "--layer 2: the run has 2 MoE layers"
expect_status 2 mt place "$T/db" --algo static --layer 0 -o "$T/x.json"
expect_status 2 mt place "$T/db" --algo static --steps 5:9
expect_grep "$T/err" "no steps"
expect_status 2 mt place "$T/db" --algo static --heat "$T/neg.json"
expect_status 2 mt place --algo static
expect_status 2 mt place "$T/db" --algo static --current deployed
expect_grep "$T/err" "records no deployed placement"
expect_status 2 mt place "$T/db" --algo static --groups 3
expect_grep "$T/err" "--groups 3 does not divide 4 experts"
[ ! -e "$T/x" ] && [ ! -e "$T/x.json" ] || fail "an output file was written after bad input"
