# render imbalance with no --replay, --algo or --placement: a replay of the
# flagship run in memory with the default settings (600 steps, or an eighth
# of the steps; window = interval; delay min(50, interval / 2); from the
# deployed placement, else static), drawn like the same replay stored.
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(48):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, [90, 50, 30, 20, 10, 8, 5, 2][(e + l + s // 12) % 8]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 4 --slots 3
mt place --list | grep -q "^keel " || skip "no flagship algorithm in this build"
cp "$T/db" "$T/db.orig"

expect_status 0 mt render "$T/db" imbalance --title T --width 1400 -o "$T/default.png"
cmp -s "$T/db" "$T/db.orig" || fail "render imbalance changed the trace"
expect_status 0 mt render "$T/db" imbalance --title T --width 1400 -o "$T/again.png"
same_file "$T/default.png" "$T/again.png"

# the same replay, stored: 48 steps -> every 6 steps, window 6, delay 3
expect_status 0 mt replay "$T/db" --algo keel --interval 6 --window 6 --delay 3 --start static
id=$(mt replays "$T/db" | awk 'NR == 2 { print $1 }')
expect_status 0 mt render "$T/db" imbalance --replay "$id" --title T --width 1400 -o "$T/stored.png"
cmp -s "$T/default.png" "$T/stored.png" && fail "the legends should name the replays differently"
# same lines and markers: the pictures differ in the legend only (above the plot)
python3 - "$T/default.png" "$T/stored.png" <<'PY' || fail "default replay drawn differently from the stored one"
import struct, sys, zlib
def rows(path):
    d = open(path, "rb").read()
    w, h, depth, ctype = struct.unpack(">IIBB", d[16:26])
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    i, idat = 8, b""
    while i < len(d):
        n, t = struct.unpack(">I4s", d[i:i + 8])
        if t == b"IDAT":
            idat += d[i + 8:i + 8 + n]
        i += 12 + n
    raw, out, prev, stride = zlib.decompress(idat), [], bytearray(w * bpp), w * bpp
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line)); prev = line
    return w, h, out
w1, h1, a = rows(sys.argv[1])
w2, h2, b = rows(sys.argv[2])
assert (w1, h1) == (w2, h2)
diff = [y for y in range(h1) if a[y] != b[y]]
print("rows differing:", diff[0], "..", diff[-1])
sys.exit(0 if diff and diff[-1] < 80 else 1)
PY

# one layer, the static start, a step range: all draw
expect_status 0 mt render "$T/db" imbalance --layer 1 -o "$T/l1.png"
expect_status 0 mt render "$T/db" imbalance --static --steps 10:40 -o "$T/part.svg"
expect_status 2 mt render "$T/db" imbalance --steps 100:200 -o "$T/x.png"
expect_grep "$T/err" "no steps of run 'r'"
[ ! -e "$T/x.png" ] || fail "x.png written on error"
exit 0
