#!/bin/sh
# Writes the seed corpora of tests/fuzz/corpus/<target>/ (small valid and
# invalid inputs).  Counts blobs come from counts_encode of the SQLite
# extension, so they follow the store's own codec.  Files named crash-* in
# the corpus are inputs that once failed: they are kept, never rewritten.
# Usage: sh tests/fuzz/make_corpus.sh [moetrace_sqlite.so]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
ext=${1:-$top/moetrace_sqlite.so}
c=$top/tests/fuzz/corpus
mkdir -p "$c/codec" "$c/csv" "$c/heat" "$c/format" "$c/sqlfn"

# ---- codec: blobs from the encoder, then broken ones
blob() { # name json
	sqlite3 :memory: ".load ${ext%.so}" \
		"SELECT writefile('$c/codec/$1', counts_encode('$2'))" >/dev/null
}
blob rice-small '[3,0,1,4,2,2,9,0]'
blob rice-wide '[1000,1200,900,5000000,1100,1050,980,1010,0,999,1001,1003]'
blob raw-large '[4294967295,4294967295,1,2147483648]'
blob empty-list '[]'
blob one '[7]'
printf '' >"$c/codec/bad-empty"
printf '\002\004abcd' >"$c/codec/bad-tag"
printf '\001\377\377\377\377\377\377\377\377\377\377' >"$c/codec/bad-varint"
printf '\000\004\001\000\000' >"$c/codec/bad-raw-short"
printf '\001\010\003' >"$c/codec/bad-rice-no-bits"
printf '\001\002\040\377\377\377\377\377\377' >"$c/codec/bad-rice-k32"
printf '\001\203\200\004\000' >"$c/codec/bad-count-too-big"

# ---- csv
cat >"$c/csv/ok-basic.csv" <<'X'
step,layer,expert,tokens
0,0,0,3
0,0,1,1
0,1,0,2
1,0,0,5
1,1,1,4
X
printf 'layer,expert,step,tokens,phase\r\n5,1,0,10,prefill\r\n5,0,0,2,prefill\r\n6,1,1,1,decode\r\n' \
	>"$c/csv/ok-crlf-phase.csv"
printf '\357\273\277"step","layer","expert","tokens"\n0,0,0,1\n' >"$c/csv/ok-bom-quoted.csv"
printf 'step,layer,expert,tokens\n0,0,0,1' >"$c/csv/ok-no-final-newline.csv"
printf 'step,layer,expert,tokens\n1,0,0,1\n0,0,0,1\n' >"$c/csv/bad-order.csv"
printf 'step,layer,expert,tokens\n0,0,0,1\n0,0,0,2\n' >"$c/csv/bad-duplicate.csv"
printf 'step,layer,expert,tokens\n0,0,0,-1\n' >"$c/csv/bad-negative.csv"
printf 'step,layer,expert,tokens\n0,0,0,4294967296\n' >"$c/csv/bad-overflow.csv"
printf 'step,layer,expert\n0,0,0\n' >"$c/csv/bad-header.csv"
printf 'step,layer,expert,tokens\n0,0,x,1\n' >"$c/csv/bad-field.csv"
printf 'step,layer,expert,tokens\n0,0,0,1,9\n' >"$c/csv/bad-extra-field.csv"
printf 'step,layer,expert,tokens\n0,2000,0,1\n' >"$c/csv/bad-layer-range.csv"
printf 'step,layer,expert,tokens,phase\n0,0,0,1,warmup\n' >"$c/csv/bad-phase.csv"
printf '' >"$c/csv/bad-empty.csv"

# ---- heat files
cp /dev/null "$c/heat/bad-empty.json"
printf '{"heat": [[5, 1, 0, 2], [3, 3, 3, 3]]}' >"$c/heat/ok-two-layers.json"
printf '{"heat": [[1.5, 2]], "ranks": 2, "slots": 1}' >"$c/heat/ok-layout.json"
printf '{"heat": [[4, 2]], "episodes": [[[1, 2]], [[3, 0]]]}' >"$c/heat/ok-episodes.json"
printf '{"heat": [[1, 2], [3]]}' >"$c/heat/bad-ragged.json"
printf '{"heat": [[1, -2]]}' >"$c/heat/bad-negative.json"
printf '{"heat": [[1, 2]], "episodes": [[[1, 2, 3]]]}' >"$c/heat/bad-episode-shape.json"
printf '{"heat": [["a"]]}' >"$c/heat/bad-type.json"
printf '{"heat": [[1e400]]}' >"$c/heat/bad-huge.json"
printf '[1, 2, 3]' >"$c/heat/bad-not-object.json"
printf '{"heat": [[1, 2' >"$c/heat/bad-truncated.json"
[ -r "${MOETRACE_SHARED:-$top/../shared}/data/examples/flashlb-example.json" ] &&
	cp "${MOETRACE_SHARED:-$top/../shared}/data/examples/flashlb-example.json" \
		"$c/heat/ok-flashlb-example.json"

# ---- placement files: byte 0 picks the shape of fuzz_format.c's table
# (0: 2 layers x 4 experts on 2 x 2; 1: 2 x 4 on 2 x 3, first layer 3;
#  2: 3 x 6 on 3 x 3, layers 1, 3, 5; 3: 1 x 8 on 4 x 2)
fmt() { { printf "\\$(printf %03o "$1")"; cat; } >"$c/format/$2"; }
fmt 0 ok-vllm-ascend.json <<'X'
{"moe_layer_count": 2, "layer_list": [
 {"layer_id": 0, "device_count": 2, "device_list": [
  {"device_id": 0, "device_expert": [0, 1]}, {"device_id": 1, "device_expert": [2, 3]}]},
 {"layer_id": 1, "device_count": 2, "device_list": [
  {"device_id": 0, "device_expert": [3, 1]}, {"device_id": 1, "device_expert": [2, 0]}]}]}
X
fmt 0 ok-sglang.json <<'X'
{"physical_to_logical_map": [[0, 1, 2, 3], [1, 0, 3, 2]]}
X
fmt 1 ok-sglang-model-layers.json <<'X'
{"physical_to_logical_map": [[0,1,2,3,0,1], [0,1,2,3,0,1], [0,1,2,3,0,1], [3,2,1,0,0,1], [0,1,2,3,2,3]]}
X
fmt 1 ok-trtllm.yaml <<'X'
num_slots: 6
layer_updates_per_iter: 0
initial_global_assignments:
  3: [0, 1, 2, 3, 0, 1]
  4: [3, 2, 1, 0, 2, 3]
X
fmt 2 ok-trtllm-block.yaml <<'X'
# block lists, quoted keys
num_slots: 9
initial_global_assignments:
  "1":
  - 0
  - 1
  - 2
  - 3
  - 4
  - 5
  - 0
  - 1
  - 2
  '3': [5, 4, 3, 2, 1, 0, 5, 4, 3]
  5: [0, 1, 2,
      3, 4, 5, 0, 0, 0]
X
fmt 3 ok-vllm-ascend-one-layer.json <<'X'
{"layer_list": [{"device_list": [{"device_expert": [0, 1]}, {"device_expert": [2, 3]},
 {"device_expert": [4, 5]}, {"device_expert": [6, 7]}]}]}
X
fmt 0 bad-expert-range.json <<'X'
{"physical_to_logical_map": [[0, 1, 2, 4], [1, 0, 3, 2]]}
X
fmt 0 bad-missing-expert.json <<'X'
{"physical_to_logical_map": [[0, 1, 2, 2], [1, 0, 3, 2]]}
X
fmt 0 bad-devices.json <<'X'
{"layer_list": [{"device_list": [{"device_expert": [0, 1, 2, 3]}]}, {"device_list": []}]}
X
fmt 1 bad-trtllm-slots.yaml <<'X'
num_slots: 5
initial_global_assignments:
  3: [0, 1, 2, 3, 0]
X
fmt 0 bad-neither.json <<'X'
{"something": [1, 2]}
X
fmt 2 bad-yaml.yaml <<'X'
initial_global_assignments: [
X

# ---- SQL functions: byte 0 = mode (bit 0: placement as blob; bits 1-3:
# ranks, 0 = none; bits 4-7: counts_at index + 2), byte 1 = length of the
# counts blob that follows, then the placement
sqlin() { # name mode counts-json placement-sql-expression
	sqlite3 :memory: ".load ${ext%.so}" \
		"SELECT writefile('$c/sqlfn/$1.tmp', counts_encode('$3') || CAST($4 AS BLOB)),
		 length(counts_encode('$3'))" >"$c/sqlfn/$1.len"
	n=$(cut -d'|' -f2 "$c/sqlfn/$1.len")
	{ printf "\\$(printf %03o "$2")\\$(printf %03o "$n")"; cat "$c/sqlfn/$1.tmp"; } \
		>"$c/sqlfn/$1"
	rm -f "$c/sqlfn/$1.tmp" "$c/sqlfn/$1.len"
}
sqlin ok-json-ranks 4 '[1,2,3,4]' "'[0,3,1,2]'"
sqlin ok-json-rows 48 '[5,0,0,7,1,1]' "'[[0,1,2],[3,4,5]]'"
sqlin ok-bad-placement 0 '[1,2,3]' "'[[0,7]]'"
sqlin ok-zero-heat 2 '[0,0,0,0]' "'[0,1,2,3]'"
sqlin ok-wide-heat 9 '[100,200,300,4000,0,1,2,3,900000,5,5,5,5,5,5,5]' "static_phy2log(16, 4, 4)"
printf '\000\377\001\377\377' >"$c/sqlfn/bad-all-counts"
printf '\000\000[[' >"$c/sqlfn/bad-all-placement"

# ---- SGLang .pt dumps: the samples written with torch and without, and
# broken copies (cut short, a flipped byte in the pickle, in a storage, in
# the zip directory; a foreign zip)
s=$top/tests/data/sglang
mkdir -p "$c/sglang_pt"
for f in stat per_pass_rank0 per_token_rank0; do
	cp "$s/torch/$f.pt" "$c/sglang_pt/ok-torch-$f.pt"
done
cp "$s/stat.pt" "$c/sglang_pt/ok-stdlib-stat.pt"
cp "$s/per_pass_rank1.pt" "$c/sglang_pt/ok-stdlib-per_pass.pt"
head -c 700 "$s/torch/stat.pt" >"$c/sglang_pt/bad-cut.pt"
flip() { # src offset dst: the byte at offset xor 0x20
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	{ head -c "$2" "$1"; printf "\\$(printf %03o $((b ^ 32)))"; tail -c +$(($2 + 2)) "$1"; } >"$3"
}
flip "$s/torch/stat.pt" 100 "$c/sglang_pt/bad-flip-pickle.pt"
flip "$s/torch/per_pass_rank0.pt" 900 "$c/sglang_pt/bad-flip-storage.pt"
# the CRC-32 field of the directory's first entry (its offset from the end record)
cd_off=$(python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read()
print(struct.unpack('<I', d[d.rfind(b'PK\\5\\6') + 16:][:4])[0] + 16)" "$s/torch/per_token_rank0.pt")
flip "$s/torch/per_token_rank0.pt" "$cd_off" "$c/sglang_pt/bad-flip-directory.pt"
(cd "$c/sglang_pt" && printf 'x' >a.txt && python3 -c "
import zipfile
with zipfile.ZipFile('bad-foreign.pt', 'w') as z:
    z.writestr(zipfile.ZipInfo('a.txt', date_time=(2025, 1, 1, 0, 0, 0)), 'x')" && rm -f a.txt)
printf '' >"$c/sglang_pt/bad-empty.pt"
# pickles alone (byte 0 = 0xff: the target wraps them into an archive)
python3 - "$s" "$c/sglang_pt" <<'PY'
import os, sys, zipfile
for src, dst in (("torch/stat.pt", "ok-pickle-stat"), ("torch/per_pass_rank0.pt", "ok-pickle-per_pass"),
                 ("torch/per_token_rank0.pt", "ok-pickle-per_token")):
    with zipfile.ZipFile(os.path.join(sys.argv[1], src)) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        open(os.path.join(sys.argv[2], dst), "wb").write(b"\xff" + z.read(pkl))
open(os.path.join(sys.argv[2], "bad-pickle-global"), "wb").write(
    b"\xff\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
PY

# ---- values at the type limits (limit-*)
sh "$top/tests/fuzz/make_corpus_limits.sh"
