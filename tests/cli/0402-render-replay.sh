# render: a stored replay in the imbalance and transfer charts.
. "$(dirname "$0")/lib.sh"

mt replays --help >/dev/null 2>&1 || skip "no replay command in this build"
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(60):
        for l in range(32):  # every MoE layer of the preset
            for e in range(8):
                hot = (e + s // 20) % 8 == 0
                f.write("%d,%d,%d,%d\n" % (s, l, e, 200 if hot else 10 + (e * 7 + s) % 5))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --model mixtral-8x7b --ranks 4 --slots 3
expect_status 0 mt replay "$T/db" --interval 10 --window 10 --delay 2
id=$(mt replays "$T/db" | awk 'NR == 2 { print $1 }')
[ -n "$id" ] || fail "no replay listed"

expect_status 0 mt render "$T/db" imbalance --replay "$id" -o "$T/imb.png"
expect_status 0 mt render "$T/db" imbalance --replay "$id" --layer 1 -o "$T/imb1.png"
cmp -s "$T/imb.png" "$T/imb1.png" && fail "--layer 1 drew the same picture"
expect_status 0 mt render "$T/db" imbalance --replay "$id" --steps 20:39 -o "$T/imb2.png"
cmp -s "$T/imb.png" "$T/imb2.png" && fail "--steps 20:39 drew the same picture"
expect_status 2 mt render "$T/db" imbalance --replay "$id" --steps 100:200 -o "$T/x.png"
expect_grep "$T/err" "no steps"
expect_status 0 mt render "$T/db" transfer --replay "$id" -o "$T/tr.pdf"
expect_status 0 mt render "$T/db" transfer --replay "$id" --summed -o "$T/tr.png"
expect_status 0 mt render "$T/db" transfer --replay "$id" --summed -o "$T/tr2.png"
same_file "$T/tr.png" "$T/tr2.png"
expect_status 2 mt render "$T/db" devices --replay "$id" -o "$T/x.png"
expect_grep "$T/err" "applies to imbalance and transfer"
expect_status 2 mt render "$T/db" transfer --replay "$((id + 1))" -o "$T/x.png"
expect_grep "$T/err" "no replay $((id + 1))"
[ ! -e "$T/x.png" ] || fail "x.png written on error"
exit 0
