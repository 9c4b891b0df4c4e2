# moetrace import of SGLang expert-distribution dumps, read in C: the
# three recorder modes as torch.save writes them (tests/data/sglang/torch,
# tests/data/make_sglang_dumps.py) and as the standard-library sample
# writer does (tests/data/sglang), each holding HEAT of make_samples.py,
# and in ZIP64 form; --replicated N for ranks that each counted every token;
# a larger stat buffer checked against torch's own sums; broken dumps
# refused with one message naming the file, exit 2, nothing written; bits
# flipped all over a dump either refused so or harmless (the same cells).
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data/sglang"

cat >"$T/want" <<'W'
0,0,0,3
0,0,1,0
0,0,2,1
0,0,3,4
0,1,0,2
0,1,1,2
0,1,2,2
0,1,3,2
1,0,0,2
1,0,1,3
1,0,2,0
1,0,3,3
1,1,0,1
1,1,1,3
1,1,2,3
1,1,3,1
W
# cells DB RUN: the run's cells, steps renumbered 0, 1 in order
cells() {
	mt sql --format csv "$1" "SELECT dense_rank() OVER (ORDER BY e.step) - 1, e.layer,
		e.expert, e.tokens FROM expert_heat e JOIN runs r USING (run) WHERE r.name = '$2'
		ORDER BY e.step, e.layer, e.expert" | grep -v '^[a-z]' >"$T/got"
	cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got" >&2; fail "run $2: cells differ"; }
}
field() { sqlite3 "$T/db" "SELECT $2 FROM runs WHERE name = '$1'"; }
steps() { sqlite3 "$T/db" "SELECT group_concat(step) FROM (SELECT step FROM steps JOIN runs USING (run) WHERE name = '$1' ORDER BY step)"; }

# stat: buffer slots 0 and 1 filled, slot 2 empty; model layer 0 dense
expect_status 0 mt import "$D/torch/stat.pt" --into "$T/db" --run stat
expect_grep "$T/out" "as run 'stat': 2 layers x 4 experts"
cells "$T/db" stat
[ "$(steps stat)" = "0,1" ] || fail "stat steps are the buffer slots: $(steps stat)"
[ "$(field stat first_layer)" = 1 ] || fail "stat: model layer 1 is MoE layer 0"
[ "$(field stat source)" = "import sglang $D/torch/stat.pt" ] || fail "stat source: $(field stat source)"
# per_token: forward passes 10, 11 numbered as such, the map as deployed
expect_status 0 mt import "$D/torch/per_token_rank0.pt" --into "$T/db" --run tok
cells "$T/db" tok
[ "$(steps tok)" = "10,11" ] || fail "per_token steps: $(steps tok)"
# per_pass: the directory of both ranks' files, summed, on 2 ranks x 3 slots
mkdir -p "$T/pp" && cp "$D/torch/per_pass_rank0.pt" "$D/torch/per_pass_rank1.pt" "$T/pp/"
expect_status 0 mt import "$T/pp" --into "$T/db" --run pp
cells "$T/db" pp
[ "$(field pp "ranks || 'x' || slots")" = 2x3 ] || fail "per_pass layout: $(field pp "ranks || 'x' || slots")"
[ "$(sqlite3 "$T/db" "SELECT count(*), min(step) FROM deployed JOIN runs USING (run) WHERE name = 'pp'")" = "2|10" ] ||
	fail "per_pass: the map is the deployed placement from the first pass"
expect_status 0 mt export "$T/db" --run pp --placement deployed --format sglang -o "$T/map.json"
python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['physical_to_logical_map']
assert m == [[0,1,2,3,0,1],[0,1,3,2,3,0],[1,2,0,3,1,2]], m" "$T/map.json" || fail "exported map differs from the dump's (dense layer 0 trivial)"
# one rank alone holds only its tokens (half of each count, rounded down)
expect_status 0 mt import "$D/torch/per_pass_rank0.pt" --into "$T/db" --run r0
[ "$(mt sql --format csv "$T/db" "SELECT sum(tokens) FROM expert_heat JOIN runs USING (run) WHERE name = 'r0'" | tail -n 1)" = 12 ] ||
	fail "rank 0's share"
# the same dump in ZIP64 form (torch's writer switches to it past 4 GiB):
# saturated sizes and offsets, ZIP64 extra fields, ZIP64 end record and locator
python3 - "$D/torch/per_token_rank0.pt" "$T/zip64.pt" <<'PY'
import struct, sys, zipfile, zlib
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    ents = [(i.filename, z.read(i.filename)) for i in z.infolist()]
out = bytearray()
cds = []
for name, data in ents:
    off = len(out)
    nb = name.encode()
    crc = zlib.crc32(data)
    # local header: sizes saturated, zip64 extra with both sizes
    ext = struct.pack("<HHQQ", 1, 16, len(data), len(data))
    out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0, crc, 0xffffffff, 0xffffffff,
                       len(nb), len(ext)) + nb + ext + data
    cext = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
    cds.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0, crc,
                           0xffffffff, 0xffffffff, len(nb), len(cext), 0, 0, 0, 0, 0xffffffff)
               + nb + cext)
cd_off = len(out)
for c in cds:
    out += c
cd_size = len(out) - cd_off
z64 = len(out)
out += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, len(cds), len(cds), cd_size, cd_off)
out += struct.pack("<IIQI", 0x07064b50, 0, z64, 1)
out += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
open(dst, "wb").write(out)
PY
python3 -c "import zipfile, sys; zipfile.ZipFile(sys.argv[1]).testzip()" "$T/zip64.pt" || fail "zip64.pt is not a valid zip"
expect_status 0 mt import "$T/zip64.pt" --into "$T/db" --run zip64
cells "$T/db" zip64
# the samples written without torch read the same
expect_status 0 mt import "$D/stat.pt" --into "$T/db" --run stdstat
cells "$T/db" stdstat
mkdir -p "$T/spp" && cp "$D/per_pass_rank0.pt" "$D/per_pass_rank1.pt" "$T/spp/"
expect_status 0 mt import "$T/spp" --into "$T/db" --run stdpp --format sglang
cells "$T/db" stdpp

# The dumps torch writes for the two parts below, in one interpreter (torch
# costs two seconds of CPU to import): the rank files of --replicated 2
# (make_sglang_dumps.py ranks), a stat dump of doubled counts, a larger stat
# buffer and its every cell's sum as torch reads it back
if have_torch; then
	/usr/bin/python3 - "$MOETRACE_TOP/tests/data" "$D/torch/stat.pt" "$T" <<'PY' || fail "writing the dumps with torch"
import os, sys
sys.path.insert(0, sys.argv[1])
import make_sglang_dumps as m
torch, t = m.torch, sys.argv[3]
m.ranks(os.path.join(t, "rep"), "1765000000.5", 10, 2, 2)
d = torch.load(sys.argv[2])
d["logical_count"] = d["logical_count"] * 2
torch.save(d, os.path.join(t, "stat2.pt"))
m.stat(os.path.join(t, "big"), 12, 61, 256, 3, 7)
big = os.path.join(t, "big", os.listdir(os.path.join(t, "big"))[0])
c = torch.load(big)["logical_count"].long().sum(0)
with open(os.path.join(t, "big.want"), "w") as f:
    for l in range(3, 61):
        for e in range(256):
            f.write("%d,%d,%d\n" % (l - 3, e, c[l, e]))
sys.stdout.flush()
os._exit(0)  # files closed: skip torch's teardown
PY
fi

# --replicated N: N tensor-parallel ranks that each counted every token.
# per_pass: every rank the full counts (make_sglang_dumps.py ranks), kept once
if have_torch; then
	expect_status 0 mt import "$T/rep" --into "$T/db" --run rep --replicated 2
	cells "$T/db" rep
	[ "$(field rep "ranks || 'x' || slots")" = 2x3 ] || fail "replicated layout"
	expect_status 2 mt import "$T/rep" --into "$T/db" --run rep3 --replicated 3
	expect_grep "$T/err" "forward pass 10 is in 2 of the --replicated 3 ranks' records"
	# stat: SGLang all-reduced two ranks' equal counts, divided back
	expect_status 0 mt import "$T/stat2.pt" --into "$T/db" --run stat2 --replicated 2
	cells "$T/db" stat2
fi
# counts that are not N equal shares are refused
expect_status 2 mt import "$D/torch/stat.pt" --into "$T/db" --run s3 --replicated 2
expect_grep "$T/err" "stat.pt: field 'logical_count': 3 \\(step 0, layer 1, expert 0\\) is not a multiple of --replicated 2"
expect_status 2 mt import "$T/pp" --into "$T/db" --run pp2 --replicated 2
expect_grep "$T/err" "per_pass_rank1.pt: records\\[0\\]: field 'global_physical_count' of forward pass 10 differs from .*per_pass_rank0.pt records\\[0\\]'s"
expect_status 2 mt import "$MOETRACE_TOP/tests/data/heat.csv" --into "$T/db" --run c2 --replicated 2
expect_grep "$T/err" "--replicated applies to SGLang dumps, '.*heat.csv' is csv"

# a larger stat buffer (passes of 62 KiB, past the reader's 64 KiB chunks):
# every cell's sum against torch's
if have_torch; then
	big=$(ls "$T"/big/*.pt)
	expect_status 0 mt import "$big" --into "$T/db" --run big
	expect_grep "$T/out" "as run 'big': 58 layers x 256 experts"
	mt sql --format csv "$T/db" "SELECT e.layer, e.expert, sum(e.tokens) FROM expert_heat e
		JOIN runs r USING (run) WHERE r.name = 'big' GROUP BY 1, 2 ORDER BY 1, 2" |
		grep -v '^[a-z]' >"$T/big.got"
	cmp -s "$T/big.want" "$T/big.got" || fail "the stat buffer's sums differ from torch's"
	[ "$(steps big | tr ',' '\n' | wc -l)" = 12 ] || fail "12 passes"
fi

# ---- broken dumps: one line naming the file, exit 2, nothing written
state() { sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM counts; SELECT count(*) FROM deployed"; }
before=$(state)
bad() { # NAME FILE REGEX [options]
	name=$1 file=$2 re=$3; shift 3
	expect_status 2 mt import "$file" --into "$T/db" --run "$name" --format sglang "$@"
	expect_grep "$T/err" "$re"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "$name: more than one line of message"
	[ "$(state)" = "$before" ] || fail "$name: the database changed"
	expect_status 2 mt import "$file" --into "$T/new.db" --run "$name" --format sglang "$@"
	[ ! -e "$T/new.db" ] || fail "$name: a failed import left $T/new.db"
}
# pyw FILE 'python statements': a dump written by the sample writer (protocol 2 pickle)
pyw() {
	python3 - "$MOETRACE_TOP/tests/data" "$1" "$2" <<'PY'
import sys, collections
sys.path.insert(0, sys.argv[1])
import make_samples as m
T = m._FakeTensor
obj = eval(sys.argv[3])
m.torch_save(obj, sys.argv[2])
PY
}
head -c 600 "$D/torch/stat.pt" >"$T/cut.pt"
bad cut "$T/cut.pt" "cut.pt: not a torch.save archive: no zip end record"
printf 'just text\n' >"$T/text.pt"
bad text "$T/text.pt" "text.pt: not a torch.save archive"
pyw "$T/neither.pt" '{"rank": 0, "counts": T((1, 2), [1, 2])}'
bad neither "$T/neither.pt" "neither.pt: neither a 'stat' dump \\(logical_count\\) nor a 'per_pass'/'per_token' dump \\(records\\)"
pyw "$T/neg.pt" '{"logical_count": T((1, 2, 2), [1, -3, 0, 0])}'
bad neg "$T/neg.pt" "neg.pt: field 'logical_count': element 1 is -3, not a count"
pyw "$T/dims.pt" '{"logical_count": T((4,), [1, 2, 3, 4])}'
bad dims "$T/dims.pt" "dims.pt: field 'logical_count': 1 dimensions, expected 3"
pyw "$T/empty.pt" '{"logical_count": T((2, 1, 2), [0, 0, 0, 0])}'
bad empty "$T/empty.pt" "empty.pt: no forward pass with any count"
pyw "$T/norec.pt" '{"records": [1, 2], "last_physical_to_logical_map": T((1, 2), [0, 1])}'
bad norec "$T/norec.pt" "norec.pt: field 'records': 2 entries are not records"
pyw "$T/nofp.pt" '{"records": [{"rank": 0, "global_physical_count": T((1, 2), [1, 1])}], "last_physical_to_logical_map": T((1, 2), [0, 1])}'
bad nofp "$T/nofp.pt" "nofp.pt: records\\[0\\]: field 'forward_pass_id': missing"
pyw "$T/shape.pt" '{"records": [{"forward_pass_id": 0, "global_physical_count": T((1, 3), [1, 1, 1])}], "last_physical_to_logical_map": T((1, 2), [0, 1])}'
bad shape "$T/shape.pt" "shape.pt: field 'records\\[0\\].global_physical_count': shape \\[1, 3\\], the map has \\[1, 2\\]"
pyw "$T/noslot.pt" '{"records": [{"forward_pass_id": 0, "global_physical_count": T((2, 3), [1, 1, 1, 1, 1, 1])}], "last_physical_to_logical_map": T((2, 3), [0, 1, 2, 0, 2, 2])}'
bad noslot "$T/noslot.pt" "noslot.pt: field 'last_physical_to_logical_map': layer 1 puts logical expert 1 on no slot"
pyw "$T/twice.pt" '{"records": [{"forward_pass_id": 4, "global_physical_count": T((1, 2), [1, 1])}, {"forward_pass_id": 4, "global_physical_count": T((1, 2), [1, 1])}], "last_physical_to_logical_map": T((1, 2), [0, 1])}'
bad twice "$T/twice.pt" "twice.pt: records\\[1\\]: forward pass 4 of rank -1 is already in .*twice.pt records\\[0\\]"
# a pickle naming a global no dump holds (the safe-loading rule)
python3 - "$T/evil.pt" <<'PY'
import os, pickle, sys, zipfile
class Evil:
    def __reduce__(self):
        return (os.system, ("true",))
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps({"logical_count": Evil()}, protocol=2))
PY
bad evil "$T/evil.pt" "evil.pt: data.pkl: refers to (posix|os).system, which an SGLang expert-distribution dump does not hold"
# a compressed entry (torch stores them)
python3 - "$D/torch/stat.pt" "$T/deflated.pt" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as a, zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as b:
    for n in a.namelist():
        b.writestr(n, a.read(n))
PY
bad deflated "$T/deflated.pt" "deflated.pt: zip entry 'stat/.*' is compressed \\(method 8\\); torch.save stores entries uncompressed"
# dumps of two deployments, or of two modes, in one directory
mkdir -p "$T/mix" && cp "$D/torch/stat.pt" "$D/torch/per_pass_rank0.pt" "$T/mix/"
bad mix "$T/mix" "a 'stat' and a 'per_pass' dump cannot be mixed"
mkdir -p "$T/two" && cp "$D/torch/per_pass_rank0.pt" "$T/two/a.pt" && cp "$D/per_pass_rank1.pt" "$T/two/b.pt"
pyw "$T/two/b.pt" '{"records": [{"forward_pass_id": 10, "rank": 1, "global_physical_count": T((3, 6), [0]*18)}], "last_physical_to_logical_map": T((3, 6), [0,1,2,3,0,1]*3)}'
bad two "$T/two" "b.pt: field 'last_physical_to_logical_map' differs from .*a.pt's: not dumps of one deployment"
# a shape the preset does not have
bad preset "$D/torch/stat.pt" "stat.pt: 2 MoE layers x 4 experts \\(model layers 1 to 2\\), the preset deepseek-v3 has 58 x 256" --model deepseek-v3

# ---- bits of a dump flipped, one at a time at 40 places spread over the
# file: refused naming the file, or the same cells (a byte no reader looks
# at: a date, the alignment padding of torch's local headers)
n=$(wc -c <"$D/torch/per_pass_rank0.pt")
expect_status 0 mt import "$D/torch/per_pass_rank0.pt" --into "$T/flip.db" --run ref
mt sql --format csv "$T/flip.db" "SELECT step, layer, expert, tokens FROM expert_heat WHERE run = 1" >"$T/ref.cells"
python3 - "$D/torch/per_pass_rank0.pt" "$T/flips" <<'PY'
import os, sys
d = open(sys.argv[1], "rb").read()
os.makedirs(sys.argv[2])
for k in range(40):
    i = k * len(d) // 40 + k % 7
    b = bytearray(d)
    b[i] ^= 1 << (i % 8)
    open(os.path.join(sys.argv[2], "f%05d.pt" % i), "wb").write(b)
PY
refused=0 same=0
for f in "$T"/flips/*.pt; do
	rm -f "$T/f.db"*
	mt import "$f" --into "$T/f.db" --run x --format sglang >/dev/null 2>"$T/ferr"
	rc=$?
	if [ $rc = 2 ]; then
		[ "$(wc -l <"$T/ferr")" = 1 ] && grep -q "$f" "$T/ferr" || { cat "$T/ferr" >&2; fail "$f: not one message naming the file"; }
		[ ! -e "$T/f.db" ] || fail "$f: a refused import left a database"
		refused=$((refused + 1))
	elif [ $rc = 0 ]; then
		mt sql --format csv "$T/f.db" "SELECT step, layer, expert, tokens FROM expert_heat WHERE run = 1" >"$T/f.cells"
		cmp -s "$T/ref.cells" "$T/f.cells" || fail "$f: accepted with other cells"
		same=$((same + 1))
	else
		cat "$T/ferr" >&2
		fail "$f: exit status $rc"
	fi
done
[ $refused -gt 0 ] || fail "no flipped dump refused"
exit 0
