# render: every chart kind in every format from a small imported trace;
# PNG sizes from the file header, PDF page count, and identical bytes when
# the same chart is drawn twice (by separate processes).
. "$(dirname "$0")/lib.sh"

# 2 layers x 8 experts, 6 steps; expert 0 of layer 0 is hot
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(6):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, 400 if (l, e) == (0, 0) else 10 + e + s))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 4 --slots 3

png_size() { # prints "W H" from the IHDR chunk
	od -An -tu1 -j16 -N8 "$1" | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4, $5*16777216 + $6*65536 + $7*256 + $8 }'
}
pdf_pages() { grep -a -c '/Type /Page[^s]' "$1"; }

for kind in heatmap timeline devices imbalance; do
	for ext in png svg pdf; do
		expect_status 0 mt render "$T/db" $kind -o "$T/$kind.$ext"
		expect_grep "$T/out" "wrote $T/$kind.$ext"
		expect_status 0 mt render "$T/db" $kind -o "$T/$kind-2.$ext"
		same_file "$T/$kind.$ext" "$T/$kind-2.$ext"
	done
	[ "$(png_size "$T/$kind.png")" = "1000 600" ] || fail "$kind.png is $(png_size "$T/$kind.png")"
	head -c 5 "$T/$kind.pdf" | grep -q '%PDF-' || fail "$kind.pdf is not a PDF"
	[ "$(pdf_pages "$T/$kind.pdf")" = 1 ] || fail "$kind.pdf has $(pdf_pages "$T/$kind.pdf") pages"
	grep -q '<svg' "$T/$kind.svg" || fail "$kind.svg is not SVG"
done

# size and scale
expect_status 0 mt render "$T/db" heatmap --width 640 --height 400 --scale 2 -o "$T/big.png"
[ "$(png_size "$T/big.png")" = "1280 800" ] || fail "big.png is $(png_size "$T/big.png")"

# options that change the picture change the bytes
expect_status 0 mt render "$T/db" heatmap --sort heat -o "$T/sorted.png"
cmp -s "$T/heatmap.png" "$T/sorted.png" && fail "--sort heat drew the same picture"
expect_status 0 mt render "$T/db" heatmap --linear -o "$T/log.png"
cmp -s "$T/heatmap.png" "$T/log.png" && fail "--linear drew the same picture"
expect_status 0 mt render "$T/db" timeline --layer 1 --steps 2:4 -o "$T/tl.png"
cmp -s "$T/timeline.png" "$T/tl.png" && fail "--layer 1 --steps 2:4 drew the same picture"
expect_status 0 mt render "$T/db" devices --layer 0 --static --title "layer zero" -o "$T/dev.png"
expect_status 0 mt render "$T/db" imbalance --layer 1 -o "$T/imb.png"

# nothing but the charts was written: no temporary files left
[ -z "$(ls "$T" | grep '\.tmp-')" ] || fail "temporary files left: $(ls "$T")"
exit 0
