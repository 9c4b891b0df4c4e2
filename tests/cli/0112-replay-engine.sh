# replay --engine: each engine's preset replays with the settings
# docs/replay.md documents for it (read from its table here, so the two
# cannot drift), options beside it override them, --grid engine= compares
# the engines with the flagship; an unknown engine exits 2 naming the
# choices.  And the one default cadence: replay, --grid and report agree.
. "$(dirname "$0")/lib.sh"
doc="$(cd "$(dirname "$0")/../.." && pwd)/docs/replay.md"
[ -f "$doc" ] || fail "no docs/replay.md beside the tests"
for a in eplb eplb-hier swift keel; do
	mt place --list | grep -q "^$a " || skip "no $a in this build"
done

# 2 layers x 8 experts, 1200 steps, 4 ranks x 3 slots; the hot expert moves
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(1200):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, [40, 20, 10, 6, 4, 3, 2, 1][(e + l + s // 97) % 8]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run e --ranks 4 --slots 3

# the documented table: | `name` | `algo` | interval | window | delay | ...
for eng in vllm sglang vllm-ascend trtllm; do
	row=$(grep -E "^\| \`$eng\` \|" "$doc") || fail "docs/replay.md has no row for $eng"
	expect_status 0 mt replay "$T/db" --engine "$eng" --no-store --json
	python3 - "$T/out" "$row" "$eng" <<'PY' || fail "--engine $eng: settings differ from docs/replay.md"
import json, sys
d = json.load(open(sys.argv[1]))["params"]
cells = [c.strip().strip("`") for c in sys.argv[2].strip().strip("|").split("|")]
name, algo, interval, window, delay = cells[:5]
assert name == sys.argv[3] == d["engine"], (name, d)
assert d["algo"] == algo, (d["algo"], algo)
# "layers": one layer re-placed a step, so every layer once per MoE layer count (2 here)
assert d["interval"] == (2 if interval == "layers" else int(interval)), (d["interval"], interval)
assert d["window"] == int(window) and d["delay"] == int(delay), (d, window, delay)
assert d["ranks"] == 4 and d["slots"] == 3, d   # the run's layout is kept
PY
done
# options beside --engine override its values
expect_status 0 mt replay "$T/db" --engine vllm --interval 500 --delay 7 --no-store --json
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["params"]; assert (p["algo"], p["interval"], p["window"], p["delay"]) == ("eplb-hier", 500, 1000, 7), p' "$T/out" ||
	fail "--interval and --delay beside --engine"
expect_status 0 mt replay "$T/db" --engine sglang --algo keel --no-store --json
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["params"]; assert p["algo"] == "keel" and p["interval"] == 1000, p' "$T/out" ||
	fail "--algo beside --engine"
# text output names the preset and the engine's own settings
expect_status 0 mt replay "$T/db" --engine vllm-ascend --no-store
expect_grep "$T/out" "^vllm-ascend's EPLB with its defaults \\(.*expert_heat_collection_interval 600"

# a stored replay keeps the preset's name
expect_status 0 mt replay "$T/db" --engine sglang
expect_status 0 mt replays --json "$T/db"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[-1]; assert r["engine"] == "sglang" and r["interval"] == 1000, r' "$T/out" ||
	fail "the stored replay does not name its engine preset"

# unknown engines: exit 2, the choices named
expect_status 2 mt replay "$T/db" --engine tgi --no-store
expect_grep "$T/err" "^moetrace replay: --engine: unknown engine 'tgi' \\(vllm, sglang, vllm-ascend or trtllm\\)"
expect_status 2 mt replay "$T/db" --grid engine=vllm,tgi
expect_grep "$T/err" "engine=tgi: unknown engine \\(vllm, sglang, vllm-ascend or trtllm\\)"
expect_status 2 mt replay "$T/db" --grid engine=vllm interval=100
expect_grep "$T/err" "engine= sets the algorithm"

# the grid: one row per engine with its preset, and the flagship at the
# default cadence (1200 steps: an eighth, 150; delay 50)
expect_status 0 mt replay "$T/db" --grid engine=vllm-ascend,trtllm --format json
python3 - "$T/out" <<'PY' || fail "grid engine="
import json, sys
rows = {r["engine"]: r for r in json.load(open(sys.argv[1]))}
assert set(rows) == {"vllm-ascend", "trtllm", None}, rows.keys()
a, t, f = rows["vllm-ascend"], rows["trtllm"], rows[None]
assert (a["algo"], a["interval"], a["window"], a["delay"]) == ("swift", 600, 600, 50), a
assert (t["algo"], t["interval"], t["window"], t["delay"]) == ("eplb", 2, 10, 0), t
assert (f["algo"], f["interval"], f["window"], f["delay"]) == ("keel", 150, 150, 50), f
PY

# one default cadence: replay, the grid's default row and report agree
expect_status 0 mt replay "$T/db" --no-store --json
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["params"]; assert (p["interval"], p["window"], p["delay"], p["engine"]) == (150, 150, 50, ""), p' "$T/out" ||
	fail "replay's default cadence on 1200 steps"
expect_status 0 mt replay "$T/db" --grid algos=keel --format csv
expect_grep "$T/out" "^1,keel,4,3,150,150,50,"
expect_status 0 mt report "$T/db" -o "$T/rep" --algos eplb,keel
expect_grep "$T/out" "replayed every 150 steps"
# a long selection: 600 / 600 / 50 (1 layer x 4 experts, 4900 steps)
python3 - "$T/long.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(4900):
        for e in range(4):
            f.write("%d,0,%d,%d\n" % (s, e, [9, 3, 2, 1][(e + s // 300) % 4]))
PY
expect_status 0 mt import "$T/long.csv" --into "$T/db" --run long --ranks 2 --slots 2
expect_status 0 mt replay "$T/db" --run long --algo eplb --no-store --json
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["params"]; assert (p["interval"], p["window"], p["delay"]) == (600, 600, 50), p' "$T/out" ||
	fail "replay's default cadence on 4900 steps"
exit 0
