# render imbalance: the recorded placement against a placement file or an
# algorithm fitted on the same steps, per step; bad combinations exit 2.
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(30):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, [90, 50, 30, 20, 10, 8, 5, 2][(e + l + s // 10) % 8]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 4 --slots 3
mt place --list | grep -q "^eplb " || skip "no eplb algorithm in this build"

expect_status 0 mt render "$T/db" imbalance -o "$T/base.png"
expect_status 0 mt render "$T/db" imbalance --algo eplb -o "$T/algo.png"
cmp -s "$T/base.png" "$T/algo.png" && fail "--algo eplb drew only the baseline"
expect_status 0 mt place "$T/db" --algo eplb -o "$T/eplb.json"
expect_status 0 mt render "$T/db" imbalance --placement "$T/eplb.json" --layer 1 -o "$T/file.png"
expect_status 0 mt render "$T/db" imbalance --placement "$T/eplb.json" --layer 1 -o "$T/file2.png"
same_file "$T/file.png" "$T/file2.png"
expect_status 0 mt render "$T/db" imbalance --static --algo eplb --steps 10:19 -o "$T/part.svg"

expect_status 2 mt render "$T/db" imbalance --placement "$T/t.csv" -o "$T/x.png"
expect_grep "$T/err" "t.csv"
expect_status 2 mt render "$T/db" timeline --algo eplb -o "$T/x.png"
expect_grep "$T/err" "apply to the devices and imbalance charts"
[ ! -e "$T/x.png" ] || fail "x.png written on error"
exit 0
