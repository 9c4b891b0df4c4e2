# moetrace import of broken engine dumps: a truncated safetensors header,
# a wrong dtype, a key not "{iter}_{layer}", ranks that disagree on the
# shape, a malformed JSON line, a torch .pt file.  Each is refused with the
# file, key or line and field named, exit 2, the database unchanged and a
# database created by the failed import removed.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"
command -v python3 >/dev/null || skip "python3 writes the broken samples"

expect_status 0 mt import "$D/heat.csv" --into "$T/db" --run base
state() { sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM counts; SELECT count(*) FROM deployed"; }
before=$(state)

# st DIR NAME DTYPE 'KEY=v,v,..;KEY=...': one rank file through the sample writer
st() {
	mkdir -p "$T/$1"
	python3 - "$D" "$T/$1/$2" "$3" "$4" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import make_samples as m
tensors = {}
for item in sys.argv[4].split(";"):
    k, v = item.split("=")
    tensors[k] = [int(x) for x in v.split(",")]
open(sys.argv[2], "wb").write(m.safetensors(tensors, sys.argv[3]))
PY
}
# bad NAME FILE REGEX [options]: refused with exit 2, nothing changed
bad() {
	name=$1 file=$2 re=$3; shift 3
	expect_status 2 mt import "$file" --into "$T/db" --run "$name" "$@"
	expect_grep "$T/err" "$re"
	[ "$(state)" = "$before" ] || fail "$name: the database changed"
	expect_status 2 mt import "$file" --into "$T/new.db" --run "$name" "$@"
	[ ! -e "$T/new.db" ] || fail "$name: a failed import left $T/new.db"
}

# a truncated header: the length field promises more than the file holds
st trunc rank0.safetensors I64 '0_3=1,2,3,4'
head -c 40 "$T/trunc/rank0.safetensors" >"$T/trunc/rank1.safetensors"
bad trunc "$T/trunc" "rank1.safetensors: truncated header: its length field says [0-9]+ bytes, 32 follow"
# data cut off after the header
st cut rank0.safetensors I64 '0_3=1,2,3,4'
sz=$(wc -c <"$T/cut/rank0.safetensors")
head -c $((sz - 8)) "$T/cut/rank0.safetensors" >"$T/cut/r" && mv "$T/cut/r" "$T/cut/rank0.safetensors"
bad cut "$T/cut" "rank0.safetensors: key '0_3': field 'data_offsets': \\[0, 32\\] runs past the 24 data bytes"
# a wrong dtype
st dtype rank0.safetensors F32 '0_3=1,2,3,4'
bad dtype "$T/dtype" "rank0.safetensors: key '0_3': field 'dtype': F32 is not an integer type"
# a key that is not {iter}_{layer}
st key rank0.safetensors I64 '0_3=1,2,3,4;model.layers.3=1,2,3,4'
bad key "$T/key" "rank0.safetensors: key 'model.layers.3' does not match '\\{iter\\}_\\{layer\\}'"
# ranks that disagree on the number of experts
st shape rank0.safetensors I64 '0_3=1,2,3,4'
st shape rank1.safetensors I32 '0_3=1,2,3'
bad shape "$T/shape" "rank1.safetensors: key '0_3': field 'counts': 3 experts, but .*rank0.safetensors: key '0_3' has 4 \\(shape mismatch\\)"
# a key missing from every rank (iterations 0, 1 x layers 3, 4)
st grid rank0.safetensors I64 '0_3=1,2;0_4=1,2;1_3=1,2'
bad grid "$T/grid" "key '1_4' is in no rank file \\(2 iterations x 2 layers need every key\\)"
# meta_info.json disagreeing with the tensors
st meta rank0.safetensors I64 '0_3=1,2,3,4'
echo '{"num_experts": 16, "num_experts_per_token": 2}' >"$T/meta/meta_info.json"
bad meta "$T/meta" "key '0_3': field 'counts': 4 experts, the run has 16"
# no rank files at all
mkdir -p "$T/empty" && echo '{"num_experts": 4}' >"$T/empty/meta_info.json"
bad empty "$T/empty" "no rank\\*.safetensors files"

# malformed JSON lines, ours and Megatron's
printf '{"step": 0, "layer": 0, "counts": [1, 2]}\n{"step": 1, "layer": 0, "counts": [1, 2}\n' >"$T/m.jsonl"
bad malformed "$T/m.jsonl" "m.jsonl:2: malformed JSON line"
mkdir -p "$T/mg"
printf '{"step": 0, "layer": 1, "topk": 2, "top_indices": [[0, 1]]}\n{"step": 0, "layer": 3, "topk": 2, "top_indices": [[0, 1], [2]]}\n' >"$T/mg/router_trace_rank0.jsonl"
bad megatron "$T/mg" "router_trace_rank0.jsonl:2: field 'top_indices'\\[1\\]: 1 ids, 'topk' says 2"
printf '{"step": 0, "layer": 1, "top_indices": [[0, 9]]}\n' >"$T/mg9.jsonl"
bad range "$T/mg9.jsonl" "mg9.jsonl:1: expert 9 is out of range for the given shape \\(4 experts\\)" --experts 4 --format megatron
printf '{"step": 0, "layer": 0, "counts": [1, 2]}\n{"step": 0, "layer": 0, "counts": [3, 4]}\n' >"$T/dup.jsonl"
bad dup "$T/dup.jsonl" "dup.jsonl:2: duplicate record for step 0, layer 0 \\(first at line 1\\)"
# a record with 'counts' as rows holds every layer of its step: one with
# fewer rows than the first (a truncated line) is refused, not read as zero
# heat in the layers it lost; the export's own lines take the fast path, a
# line with a space more the other one, and both refuse it
printf '{"step":0,"counts":[[1,2],[3,4]]}\n{"step":1,"counts":[[5,6]]}\n' >"$T/rows.jsonl"
bad rows "$T/rows.jsonl" "rows.jsonl:2: field 'counts': 1 layer row, but line 1 has 2: a record of rows holds every layer of its step"
printf '{"step": 0, "counts": [[1, 2]], "x": 1}\n{"step":1,"counts":[[5,6],[7,8]]}\n' >"$T/rows2.jsonl"
bad rows2 "$T/rows2.jsonl" "rows2.jsonl:2: field 'counts': 2 layer rows, but line 1 has 1"

# a .pt file that is no torch.save archive (tests/cli/0805 has the rest)
printf 'PK\003\004not really a torch file' >"$T/dump.pt"
bad pt "$T/dump.pt" "dump.pt: not a torch.save archive: no zip end record"

# deployed maps that do not fit the run roll the whole import back
printf '{"layer_list": [{"device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 3]}]}]}' >"$T/onelayer.json"
bad deployed "$D/heat.csv" "onelayer.json': layer_list: 1 layers, the run has 2" --deployed "$T/onelayer.json"
printf '{"layer_list": [{"device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 2]}]}, {"device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 3]}]}]}' >"$T/noexp3.json"
bad deployed2 "$D/heat.csv" "noexp3.json': layer 0 places expert 3 nowhere" --deployed "$T/noexp3.json"
bad deployed3 "$D/heat.csv" "an SGLang mapping does not say how many ranks share its 6 slots: give --ranks" --deployed "$D/deployed/sglang_map.json"

[ "$(state)" = "$before" ] || fail "db changed"
sqlite3 "$T/db" "PRAGMA integrity_check" | grep -qx ok || fail "integrity"
exit 0
