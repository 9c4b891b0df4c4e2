# render: bad input exits 2 with a message naming what is wrong, and
# leaves no output file (not even a partial or temporary one).
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(3):
        for l in range(2):
            for e in range(4):
                f.write("%d,%d,%d,%d\n" % (s, l, e, 1 + e))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 2 --slots 2
mkdir "$T/out.d"

bad() { # pattern, render arguments...
	pat=$1; shift
	expect_status 2 mt render "$@"
	expect_grep "$T/err" "$pat"
	[ -z "$(ls "$T/out.d")" ] || fail "'$*' left $(ls "$T/out.d")"
}
bad "unknown chart kind 'pie'" "$T/db" pie -o "$T/out.d/x.png"
bad "layer 2 out of range: run 'r' has layers 0-1" "$T/db" timeline --layer 2 -o "$T/out.d/x.png"
bad "layer 5 out of range" "$T/db" devices --layer 5 -o "$T/out.d/x.png"
bad "no steps of run 'r' in the chosen range" "$T/db" heatmap --steps 100:200 -o "$T/out.d/x.png"
bad "empty range '5:2'" "$T/db" heatmap --steps 5:2 -o "$T/out.d/x.png"
bad "no replay 42" "$T/db" imbalance --replay 42 -o "$T/out.d/x.png"
bad "transfer draws the rebalance events of one replay" "$T/db" transfer -o "$T/out.d/x.png"
# an output the system refuses (no such directory) is an I/O failure: exit 1
expect_status 1 mt render "$T/db" heatmap -o "$T/out.d/nodir/x.png"
expect_grep "$T/err" "^moetrace render: cannot write '$T/out.d/nodir/x.png': No such file or directory$"
[ -z "$(ls "$T/out.d")" ] || fail "a refused render left $(ls "$T/out.d")"
bad "cannot tell the format of '$T/out.d/x.gif'" "$T/db" heatmap -o "$T/out.d/x.gif"
bad "no output file" "$T/db" heatmap
bad "--sort: 'size' is not heat or id" "$T/db" heatmap --sort size -o "$T/out.d/x.png"
bad "too large for a PNG" "$T/db" heatmap --width 8000 --height 8000 --scale 4 -o "$T/out.d/x.png"
bad "--width" "$T/db" heatmap --width 50 -o "$T/out.d/x.png"
bad "heatmap shows every layer" "$T/db" heatmap --layer 0 -o "$T/out.d/x.png"
bad "cannot open|no such|does not exist|not found" "$T/nope.db" heatmap -o "$T/out.d/x.png"
expect_status 2 mt render "$T/db"
[ ! -e "$T/nope.db" ] || fail "render created the database it was asked to read"

# a directory we may not write into (skipped as root, who may)
if [ "$(id -u)" != 0 ]; then
	mkdir "$T/ro" && chmod 555 "$T/ro"
	bad "cannot write" "$T/db" heatmap -o "$T/ro/x.png"
fi

# an existing chart survives a failed redraw untouched
expect_status 0 mt render "$T/db" heatmap -o "$T/out.d/keep.png"
cp "$T/out.d/keep.png" "$T/keep.orig"
expect_status 2 mt render "$T/db" heatmap --steps 100:200 -o "$T/out.d/keep.png"
same_file "$T/out.d/keep.png" "$T/keep.orig"
[ "$(ls "$T/out.d")" = keep.png ] || fail "left $(ls "$T/out.d")"

# cairo is loaded when a chart is drawn, not linked: a command that draws
# nothing runs without it, and one that draws says which library it could
# not load (exit 1, an I/O failure) and leaves the chart it would replace
if command -v readelf >/dev/null; then
	readelf -d "$MOETRACE" | grep NEEDED >"$T/needed"
	expect_nogrep "$T/needed" 'cairo'
fi
mkdir "$T/nocairo"
: >"$T/nocairo/libcairo.so.2" # not a library: dlopen() refuses it
(
	export LD_LIBRARY_PATH="$T/nocairo"
	expect_status 0 mt info "$T/db"
	expect_status 1 mt render "$T/db" heatmap -o "$T/out.d/keep.png"
) || exit 1
expect_grep "$T/err" "^moetrace render: cannot load libcairo.so.2 to draw: .*nocairo/libcairo.so.2.*apt-get install libcairo2"
same_file "$T/out.d/keep.png" "$T/keep.orig"
[ "$(ls "$T/out.d")" = keep.png ] || fail "left $(ls "$T/out.d")"
exit 0
