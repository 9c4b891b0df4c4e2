# A replay's decision is the one `place --steps` makes on the same window
# from the placement in force, every layer with the same seed: the copies
# of each rebalance, and the placement the flagship fits, are place's.
# Two decisions, the second from the first's placement.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model deepseek-v2-lite --steps 120 --seed 3 -q "$T/db"
# every 32 steps on the last 32, in force 8 steps later: decisions after
# steps 31 and 63, both in force by step 72
expect_status 0 mt replay "$T/db" --interval 32 --window 32 --delay 8 --steps 0:95 \
	--start static --no-store --json
cp "$T/out" "$T/replay.json"
expect_status 0 mt place "$T/db" --steps 0:31 --current static --json -o "$T/p0.json" \
	--format sglang
cp "$T/out" "$T/place0.json"
expect_status 0 mt place "$T/db" --steps 32:63 --current "$T/p0.json" --json
cp "$T/out" "$T/place1.json"
python3 - "$T/replay.json" "$T/place0.json" "$T/place1.json" <<'PY' || fail "replay and place differ"
import json, sys
r = json.load(open(sys.argv[1]))
p = [json.load(open(f)) for f in sys.argv[2:]]
ev = r["events"]
assert [e["step"] for e in ev[:2]] == [31, 63], ev
for e, q in zip(ev, p):
    assert q["algorithm"] == "keel", q["algorithm"]
    assert e["moves"] == q["moves"], (e["moves"], q["moves"])
    assert e["bytes"] == q["bytes"], (e["bytes"], q["bytes"])
    assert e["moves"] > 0
PY
