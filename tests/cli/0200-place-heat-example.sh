# place --heat on the example of the FlashLB pull request to vllm-ascend: DeepSeek's EPLB reaches
# a max device load of 232 (published figure); --list names every algorithm.
. "$(dirname "$0")/lib.sh"
shared_or_skip
ex="$MOETRACE_SHARED/data/examples/flashlb-example.json"
[ -f "$ex" ] || skip "no flashlb-example.json"

expect_status 0 mt place --list
expect_grep "$T/out" "^static "
expect_grep "$T/out" "^eplb "
mt place --list | grep -q "^eplb " || skip "eplb not registered yet"

# ranks and slots come from the file (8 x 2)
expect_status 0 mt place --heat "$ex" --algo eplb --json
python3 - "$T/out" <<'PY' || fail "eplb on the FlashLB example"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["algorithm"] == "eplb", d["algorithm"]
assert d["ranks"] == 8 and d["slots"] == 2
(l,) = d["layers"]
assert len(l["phy2log"]) == 16 and sorted(set(l["phy2log"])) == list(range(8))
assert abs(l["max_load"] - 232) < 1e-9, l["max_load"]
assert abs(l["mean_load"] - 181.25) < 1e-9      # 1450 tokens / 8 ranks
assert abs(l["imbalance"] - 232 / 181.25) < 1e-5
assert l["lower_bound"] <= 196.6667 + 1e-3       # the proven optimum is 196.67
PY
# the text report says the same
expect_status 0 mt place --heat "$ex" --algo eplb
expect_grep "$T/out" "^ +0 +232\\.00 +181\\.25 +1\\.2800"

# the flagship is never worse than the first published FlashLB figure (205)
if mt place --list | grep -q "^keel "; then
	expect_status 0 mt place --heat "$ex" --json
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); m=d["layers"][0]["max_load"]; assert d["algorithm"]=="keel" and 196.66 <= m <= 205, m' "$T/out" ||
		fail "keel on the FlashLB example"
fi
