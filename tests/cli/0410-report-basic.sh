# report: every chart as PNG plus a report.pdf with a summary page, the
# comparison as `moetrace compare` scores it, identical bytes on a rerun.
. "$(dirname "$0")/lib.sh"

# 2 layers x 8 experts, 40 steps; the hot experts move every 10 steps so
# a placement fitted on the first half is not the best on the second
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(40):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, [90, 50, 30, 20, 10, 8, 5, 2][(e + l + s // 10) % 8]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 4 --slots 3
mt place --list | grep -q "^keel " || skip "no flagship algorithm in this build"
cp "$T/db" "$T/db.orig"

expect_status 0 mt report "$T/db" -o "$T/rep"
cp "$T/out" "$T/stdout"
for f in heatmap timeline devices imbalance transfer; do
	[ -s "$T/rep/$f.png" ] || fail "no $f.png"
	expect_grep "$T/stdout" "^wrote $T/rep/$f.png\$"
done
expect_grep "$T/stdout" "^wrote $T/rep/report.pdf \(6 pages\)\$"
[ "$(ls -A "$T/rep" | wc -l)" -eq 6 ] || { ls -A "$T/rep" >&2; fail "stray files in the report directory"; }
cmp -s "$T/db" "$T/db.orig" || fail "report changed the trace"

# PNG header: 1000 x 600 at scale 1, 2000 x 1200 at --scale 2; the PDF has
# the summary page plus one page per chart
png_size() { python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); assert d[:8]==b"\x89PNG\r\n\x1a\n"; print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1"; }
pdf_pages() { python3 -c 'import re,sys; print(len(re.findall(rb"/Type\s*/Page(?![s\w])", open(sys.argv[1],"rb").read())))' "$1"; }
[ "$(png_size "$T/rep/heatmap.png")" = 1000x600 ] || fail "heatmap.png is $(png_size "$T/rep/heatmap.png")"
[ "$(pdf_pages "$T/rep/report.pdf")" -eq 6 ] || fail "report.pdf has $(pdf_pages "$T/rep/report.pdf") pages"

# the best algorithm is the one compare scores lowest per step on the next
# window, given the fitting window as 8 episodes as the report does by
# default, but the flagship, which reads the window's blocks as compare gives
# it them without --episodes
expect_status 0 mt compare "$T/db" --algos static,eplb,flashlb,swift --episodes 8 --format csv
grep '^overall,' "$T/out" >"$T/rows"
expect_status 0 mt compare "$T/db" --algos keel --format csv
grep '^overall,' "$T/out" >>"$T/rows"
best=$(awk -F, '$1 == "overall" { if (b == "" || $6 < m) { m = $6; b = $2 } } END { printf "%s, mean per-step imbalance %.4f", b, m }' "$T/rows")
expect_grep "$T/stdout" "^best: $best on steps 20-39 \(fitted on 0-19; "
# and the summary page says so: the episodes for the others, the flagship
# on its forecast (with --episodes, every algorithm on the episodes)
if command -v pdftotext >/dev/null; then
	pdftotext -f 1 -l 1 "$T/rep/report.pdf" - | tr '\n' ' ' | tr -s ' ' >"$T/p1"
	grep -q "(20 steps, as 8 episodes; keel: its forecast of the next window)" "$T/p1" ||
		fail "the summary page does not say what keel was fitted on: $(cat "$T/p1")"
	expect_status 0 mt report "$T/db" -o "$T/rep8" --episodes 4
	pdftotext -f 1 -l 1 "$T/rep8/report.pdf" - | tr '\n' ' ' | tr -s ' ' >"$T/p8"
	grep -q "(20 steps, as 4 episodes)" "$T/p8" || fail "--episodes 4: $(cat "$T/p8")"
fi
# --episodes 0: the summed heat only, every algorithm, as compare --episodes 0
expect_status 0 mt report "$T/db" -o "$T/rep0" --episodes 0
cp "$T/out" "$T/stdout0"
expect_status 0 mt compare "$T/db" --algos static,eplb,flashlb,swift,keel --episodes 0 --format csv
best0=$(awk -F, '$1 == "overall" { if (b == "" || $6 < m) { m = $6; b = $2 } } END { printf "%s, mean per-step imbalance %.4f", b, m }' "$T/out")
expect_grep "$T/stdout0" "^best: $best0 on steps 20-39 \(fitted on 0-19; "

# the charts are the ones `moetrace render` draws for the same steps: the
# heatmap; the timeline of the hottest layer (both layers' hottest expert
# has 1,900 tokens: the tie goes to layer 0); one layer's devices on the
# scored steps before and after the best algorithm's placement fitted on the
# first half (not on the steps drawn)
best_algo=${best%%,*}
expect_status 0 mt render "$T/db" heatmap -o "$T/h.png"
same_file "$T/h.png" "$T/rep/heatmap.png"
expect_status 0 mt render "$T/db" timeline --layer hot -o "$T/t.png"
same_file "$T/t.png" "$T/rep/timeline.png"
expect_status 0 mt render "$T/db" devices --layer 0 --algo "$best_algo" --steps 20:39 --fit 0:19 -o "$T/d0.png"
expect_status 0 mt render "$T/db" devices --layer 1 --algo "$best_algo" --steps 20:39 --fit 0:19 -o "$T/d1.png"
cmp -s "$T/d0.png" "$T/rep/devices.png" || same_file "$T/d1.png" "$T/rep/devices.png"

# identical inputs, identical bytes (into an existing directory this time,
# whose other files stay)
mkdir "$T/again" && echo keep >"$T/again/notes.txt"
expect_status 0 mt report "$T/db" -o "$T/again/"
for f in heatmap.png timeline.png devices.png imbalance.png transfer.png report.pdf; do
	same_file "$T/rep/$f" "$T/again/$f"
done
[ "$(cat "$T/again/notes.txt")" = keep ] || fail "report touched another file of the directory"
[ "$(ls -A "$T/again" | wc -l)" -eq 7 ] || { ls -A "$T/again" >&2; fail "temporary left behind"; }

# options: scale, fewer algorithms, a model for bytes, the replay's cadence
expect_status 0 mt report "$T/db" -o "$T/big" --scale 2 --algos eplb,keel --interval 8 --delay 2
[ "$(png_size "$T/big/devices.png")" = 2000x1200 ] || fail "--scale 2 gave $(png_size "$T/big/devices.png")"
expect_grep "$T/out" "replayed every 8 steps"
expect_grep "$T/out" "^best: (eplb|keel), "
exit 0
