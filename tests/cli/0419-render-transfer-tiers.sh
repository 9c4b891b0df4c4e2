#!/bin/sh
# render transfer draws what each rebalance costs in time on each link tier
# (inside nodes, across nodes: they run at once), its legend totals equal
# the replay's stored per-tier seconds; --by-layer draws the bytes stacked
# by layer as before, and a trace on one node has nothing across nodes.
. "$(dirname "$0")/lib.sh"
command -v pdftotext >/dev/null || fail "pdftotext (poppler-utils) is needed (make deps-test)"
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(60):
        for l in range(32):
            for e in range(8):
                hot = (e + s // 20) % 8 == 0
                f.write("%d,%d,%d,%d\n" % (s, l, e, 200 if hot else 10 + (e * 7 + s) % 5))
PY
# two nodes of two ranks: copies cross nodes
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --model mixtral-8x7b --ranks 4 \
	--slots 3 --ranks-per-node 2
expect_status 0 mt replay "$T/db" --interval 10 --window 10 --delay 2
id=$(mt replays "$T/db" | awk 'NR == 2 { print $1 }')
expect_status 0 mt render "$T/db" transfer --replay "$id" -o "$T/tr.pdf"
pdftotext "$T/tr.pdf" - | tr '\n' ' ' >"$T/text"
expect_grep "$T/text" "Transfer time per rebalance and link tier"
expect_grep "$T/text" "seconds per event"
g3() { python3 -c 'import sys; print("%.3g" % float(sys.argv[1]))' "$1"; }
intra=$(mt sql --format csv "$T/db" "SELECT sum(transfer_intra_seconds) FROM replay_events WHERE replay = $id" | tail -n 1)
inter=$(mt sql --format csv "$T/db" "SELECT sum(transfer_inter_seconds) FROM replay_events WHERE replay = $id" | tail -n 1)
python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > 0)' "$inter" || fail "the two-node replay moved nothing across nodes"
expect_grep "$T/text" "inside nodes \(nvlink4\): $(g3 "$intra") s in all"
expect_grep "$T/text" "across nodes \(ib-ndr-400g\): $(g3 "$inter") s in all"
# the bytes by layer are still there on request
expect_status 0 mt render "$T/db" transfer --replay "$id" --by-layer -o "$T/bl.pdf"
pdftotext "$T/bl.pdf" - | tr '\n' ' ' >"$T/text2"
expect_grep "$T/text2" "Expert weights moved per rebalance"
expect_grep "$T/text2" "stacked by layer"
