# replay of a run without a model: no expert has a size, so the bytes a
# rebalance moves and its transfer time are unknown, shown as such ("-",
# null), not as 0 B and 0 s; with --us-per-token the MoE time saved is
# known, its net of transfers is not.
. "$(dirname "$0")/lib.sh"
{
	echo "step,layer,expert,tokens"
	for s in $(seq 0 39); do
		for e in 0 1 2 3 4 5 6 7; do echo "$s,0,$e,$(( (e * 7 + s) % 11 + (e == 0) * 30 ))"; done
	done
} >"$T/t.csv"
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run t --ranks 4 --slots 3
expect_status 0 mt replay "$T/db" --algo eplb --interval 10 --window 10 --delay 0 --no-store
expect_grep "$T/out" "^rebalances [1-9][0-9]*, copies [1-9][0-9]*; bytes and transfer time unknown: no model sizes an expert \\(give --model\\)$"
expect_nogrep "$T/out" " 0 B"
expect_grep "$T/out" "^ +0 +9 +10 +1 +[1-9][0-9]* +- +- +-$"
expect_status 0 mt replay "$T/db" --algo eplb --interval 10 --window 10 --delay 0 --no-store --json
python3 - "$T/out" <<'PY' || fail "unknown figures in --json"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
assert s["moves"] > 0, s
for k in ("bytes", "transfer_seconds", "saved_seconds", "net_stop_seconds", "net_overlap_seconds"):
    assert s[k] is None, (k, s[k])
for k in ("bytes_intra_node", "bytes_inter_node", "transfer_seconds"):
    assert d[k] is None, (k, d[k])
e = d["events"][0]
for k in ("bytes", "bytes_inter_node", "transfer_seconds", "weights_moved_share"):
    assert e[k] is None, (k, e[k])
PY
# the MoE time saved is known from --us-per-token; its net is not
expect_status 0 mt replay "$T/db" --algo eplb --interval 10 --window 10 --delay 0 --no-store \
	--us-per-token 1 --json
python3 - "$T/out" <<'PY' || fail "--us-per-token without a model"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert isinstance(s["saved_seconds"], float), s
assert s["net_stop_seconds"] is None and s["bytes"] is None, s
PY
# stored, the replay keeps 0 in its NOT NULL columns; replays shows them
# as unknown, as replay did
expect_status 0 mt replay "$T/db" --algo eplb --interval 10 --window 10 --delay 0
expect_status 0 mt replays "$T/db"
expect_grep "$T/out" "^ +1 +1 eplb .* [1-9][0-9]* +-$"
expect_status 0 mt replays --json "$T/db"
python3 - "$T/out" <<'PY' || fail "replays --json of a replay without a model"
import json, sys
r = json.load(open(sys.argv[1]))[0]
assert r["moves"] > 0, r
for k in ("bytes", "bytes_inter_node", "saved_seconds", "net_stop_seconds", "net_overlap_seconds"):
    assert r[k] is None, (k, r[k])
PY
