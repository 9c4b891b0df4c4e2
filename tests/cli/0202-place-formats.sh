# place -o writes each engine's placement file; the file holds exactly the
# placement printed by --json, and --current reads every format back.
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(6):
        for l in range(4):
            for e in range(16):
                f.write("%d,%d,%d,%d\n" % (s, l, e, 1 + ((e * 7 + l * 3 + s) % 16) ** 2))
PY
# deepseek-v3's first MoE layer is model layer 3: SGLang and TensorRT-LLM
# files index layers by model layer id
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run f --ranks 4 --slots 5
algo=eplb
mt place --list | grep -q "^eplb " || algo=static
for fmt in vllm-ascend sglang trtllm; do
	expect_status 0 mt place "$T/db" --algo $algo --json -o "$T/map.$fmt" --format $fmt
	cp "$T/out" "$T/place.json"
	[ -f "$T/map.$fmt" ] || fail "no $fmt file"
	ls "$T" | grep -q "tmp" && fail "temporary file left behind"
	python3 - "$T/place.json" "$T/map.$fmt" $fmt <<'PY' || fail "$fmt file differs from --json"
import json, re, sys
d = json.load(open(sys.argv[1])); fmt = sys.argv[3]
want = [l["phy2log"] for l in d["layers"]]
text = open(sys.argv[2]).read()
if fmt == "vllm-ascend":
    j = json.loads(text)
    assert j["moe_layer_count"] == 4
    got = [[e for dev in l["device_list"] for e in dev["device_expert"]] for l in j["layer_list"]]
    assert all(len(dev["device_expert"]) == 5 for l in j["layer_list"] for dev in l["device_list"])
    assert [l["layer_id"] for l in j["layer_list"]] == [0, 1, 2, 3]
elif fmt == "sglang":
    got = json.loads(text)["physical_to_logical_map"]
else:
    assert re.search(r"^num_slots: 20$", text, re.M)
    got = [json.loads(m.group(2)) for m in re.finditer(r"^  (\d+): (\[.*\])$", text, re.M)]
assert got == want, (got, want)
PY
	# read back: going from the file to static needs at most the copies of
	# static's own rank order (ranks may be relabelled to keep experts)
	expect_status 0 mt place "$T/db" --algo static --current "$T/map.$fmt" --json
	python3 - "$T/out" "$T/place.json" <<'PY' || fail "$fmt read back"
import json, sys
d = json.load(open(sys.argv[1])); old = json.load(open(sys.argv[2]))
static = [p % 16 for p in range(20)]
naive = sum(len(set(static[r*5:r*5+5]) - set(l["phy2log"][r*5:r*5+5]))
            for l in old["layers"] for r in range(4))
assert 0 < d["moves"] <= naive, (d["moves"], naive)
PY
	# the same placement as current: nothing to move (written for the same
	# engine: for vllm-ascend, eplb's same-rank duplicates are moved)
	expect_status 0 mt place "$T/db" --algo $algo --current "$T/map.$fmt" --json \
		-o "$T/again.$fmt" --format $fmt
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["moves"]==0, d["moves"]' "$T/out" ||
		fail "$fmt: a placement compared with itself moves nothing"
done
# model layer ids: with the deepseek-v3 preset the TensorRT-LLM keys start at 3
# and SGLang gets 3 trivial dense rows in front
expect_status 0 mt place "$T/db" --algo $algo --model deepseek-v3 -o "$T/ds.yaml"
expect_grep "$T/ds.yaml" "^  3: \\["
expect_grep "$T/ds.yaml" "^  6: \\["
expect_nogrep "$T/ds.yaml" "^  0: \\["
expect_status 0 mt place "$T/db" --algo $algo --model deepseek-v3 -o "$T/ds.json" --format sglang
python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["physical_to_logical_map"]; assert len(m)==7 and m[0]==[p%16 for p in range(20)]' "$T/ds.json" ||
	fail "sglang rows per model layer"
expect_nogrep "$T/err" "note: SGLang"
# SGLang reads --init-expert-location as a file only when the name ends in
# .json (else it parses the argument as JSON text): said on stderr, for
# place and for export --placement deployed
expect_status 0 mt place "$T/db" --algo $algo --model deepseek-v3 -o "$T/ds.sglang" --format sglang
expect_grep "$T/err" "^note: SGLang reads --init-expert-location as a file only when its name ends in \.json"
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run dep --ranks 4 --slots 5 --deployed "$T/map.vllm-ascend"
expect_status 0 mt export "$T/db" --run dep --placement deployed --format sglang -o "$T/dep.txt"
expect_grep "$T/err" "^note: SGLang reads --init-expert-location"
expect_status 0 mt export "$T/db" --run dep --placement deployed --format sglang -o "$T/dep.json"
expect_nogrep "$T/err" "note: SGLang"
expect_status 0 mt export "$T/db" --run dep --placement deployed --format trtllm -o "$T/dep.yml"
expect_nogrep "$T/err" "note: SGLang"
expect_status 0 mt place "$T/db" --algo static --model deepseek-v3 --current "$T/ds.yaml" --json
expect_status 0 mt place "$T/db" --algo static --model deepseek-v3 --current "$T/ds.json" --json
# an output the system refuses (no such directory): exit 1, the message
# names the file asked for (not the temporary one beside it), nothing left
for fmt in vllm-ascend sglang; do
	expect_status 1 mt place "$T/db" --algo static -o "$T/nodir/m.$fmt" --format $fmt
	expect_grep "$T/err" "^moetrace place: cannot create '$T/nodir/m.$fmt': No such file or directory$"
done
[ ! -e "$T/nodir" ] || fail "a refused place created $T/nodir"
