# render devices: the recorded placement against an algorithm (--algo) or
# a placement file an engine loads (--placement, as `moetrace place -o`
# writes it); bad files and misplaced options exit 2 writing nothing.
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(8):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, [90, 50, 30, 20, 10, 8, 5, 2][(e + l) % 8]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 4 --slots 3
mt place --list | grep -q "^eplb " || skip "no eplb algorithm in this build"

expect_status 0 mt place "$T/db" --algo eplb -o "$T/eplb.json"
expect_status 0 mt render "$T/db" devices --layer 1 --placement "$T/eplb.json" -o "$T/file.png"
expect_status 0 mt render "$T/db" devices --layer 1 --algo eplb -o "$T/algo.png"
expect_status 0 mt render "$T/db" devices --layer 1 --algo static -o "$T/static.png"
cmp -s "$T/file.png" "$T/static.png" && fail "an eplb placement drew the same bars as static"

echo '{"oops": 1}' >"$T/bad.json"
expect_status 2 mt render "$T/db" devices --placement "$T/bad.json" -o "$T/x.png"
expect_grep "$T/err" "bad.json"
expect_status 2 mt render "$T/db" devices --placement "$T/missing.json" -o "$T/x.png"
expect_grep "$T/err" "missing.json"
expect_status 2 mt render "$T/db" devices --algo nosuch -o "$T/x.png"
expect_grep "$T/err" "unknown algorithm 'nosuch'"
expect_status 2 mt render "$T/db" heatmap --algo eplb -o "$T/x.png"
expect_grep "$T/err" "apply to the devices and imbalance charts"
expect_status 2 mt render "$T/db" devices --algo eplb --placement "$T/eplb.json" -o "$T/x.png"
[ ! -e "$T/x.png" ] || fail "x.png written on error"
exit 0
