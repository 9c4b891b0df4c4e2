# render heatmap: a log colour scale unless --linear (heat is heavy-tailed:
# linear leaves most cells dark), and --sort heat orders each layer's
# experts by that layer's own heat, since expert ids mean nothing from one
# layer to the next.
. "$(dirname "$0")/lib.sh"

# two traces, 2 layers x 6 experts: layer 1 holds the same loads as layer 0,
# in the same order in "same", reversed in "rev"
mk() {
	python3 - "$1" "$2" <<'PY'
import sys
load = [400, 90, 30, 12, 5, 1]
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(4):
        for l in range(2):
            row = load[::-1] if (l == 1 and sys.argv[2] == "rev") else load
            for e in range(6):
                f.write("%d,%d,%d,%d\n" % (s, l, e, row[e]))
PY
}
mk "$T/same.csv" same
mk "$T/rev.csv" rev
expect_status 0 mt import "$T/same.csv" --into "$T/same" --run r
expect_status 0 mt import "$T/rev.csv" --into "$T/rev" --run r

# the default is the log scale: the same bytes as --log, not as --linear
expect_status 0 mt render "$T/same" heatmap -o "$T/default.png"
expect_status 0 mt render "$T/same" heatmap --log -o "$T/log.png"
expect_status 0 mt render "$T/same" heatmap --linear -o "$T/linear.png"
same_file "$T/default.png" "$T/log.png"
cmp -s "$T/default.png" "$T/linear.png" && fail "--linear drew the log picture"
# so is the timeline's
expect_status 0 mt render "$T/same" timeline -o "$T/tdefault.png"
expect_status 0 mt render "$T/same" timeline --log -o "$T/tlog.png"
same_file "$T/tdefault.png" "$T/tlog.png"

# unsorted, the traces differ; sorted within each layer, layer 1 of "rev"
# becomes layer 1 of "same", so the pictures are identical
expect_status 0 mt render "$T/same" heatmap -o "$T/s.png"
expect_status 0 mt render "$T/rev" heatmap -o "$T/r.png"
cmp -s "$T/s.png" "$T/r.png" && fail "the two traces should draw differently unsorted"
expect_status 0 mt render "$T/same" heatmap --sort heat -o "$T/ss.png"
expect_status 0 mt render "$T/rev" heatmap --sort heat -o "$T/rs.png"
same_file "$T/ss.png" "$T/rs.png"
exit 0
