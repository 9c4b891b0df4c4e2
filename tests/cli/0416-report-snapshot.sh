# report on a one-step snapshot (a recorder's summed counts, no time axis):
# not a refusal but the pages that make sense, the heatmap and the device
# load of the least balanced layer, with a note saying what is left out.
. "$(dirname "$0")/lib.sh"
mt place --list | grep -q "^eplb " || skip "no eplb in this build"

# snap DB: the report's pages are what `render` draws for that step, the
# devices page of the layer `balance --static` finds least balanced
snap() {
	db=$1 algo=$2
	expect_status 0 mt report "$db" -o "$T/rep" --algos "static,$algo"
	cp "$T/out" "$T/stdout"
	expect_grep "$T/stdout" "^note: run '[^']*' has one step in the range \(step 0\): no windows to compare or replay"
	expect_grep "$T/stdout" "^recommendation: a single step cannot show whether rebalancing pays"
	expect_grep "$T/stdout" "^wrote $T/rep/heatmap.png\$"
	expect_grep "$T/stdout" "^wrote $T/rep/devices.png\$"
	expect_grep "$T/stdout" "^wrote $T/rep/report.pdf \(3 pages\)\$"
	[ "$(ls -A "$T/rep" | sort | tr '\n' ' ')" = "devices.png heatmap.png report.pdf " ] ||
		{ ls -A "$T/rep" >&2; fail "the report should write exactly the pages it names"; }
	pages=$(python3 -c 'import re,sys; print(len(re.findall(rb"/Type\s*/Page(?![s\w])", open(sys.argv[1],"rb").read())))' "$T/rep/report.pdf")
	[ "$pages" -eq 3 ] || fail "report.pdf has $pages pages"
	expect_status 0 mt render "$db" heatmap -o "$T/h.png"
	same_file "$T/h.png" "$T/rep/heatmap.png"
	expect_status 0 mt balance "$db" --static
	worst=$(awk '$1 ~ /^[0-9]+$/ && NF >= 3 { if (w == "" || $3 > m) { m = $3; w = $1 } } END { print w }' "$T/out")
	[ -n "$worst" ] || fail "no layer in balance's table"
	expect_status 0 mt render "$db" devices --layer "$worst" --static --algo "$algo" --steps 0:0 -o "$T/d.png"
	same_file "$T/d.png" "$T/rep/devices.png"
	rm -rf "$T/rep"
}

# 3 layers x 8 experts, one step; layer 1 is skewed, layer 2 the most
python3 - "$T/s.csv" <<'PY'
import sys
rows = [[10] * 8, [40, 30, 5, 5, 5, 5, 5, 5], [90, 1, 1, 1, 1, 1, 1, 1]]
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for l, r in enumerate(rows):
        for e, t in enumerate(r):
            f.write("0,%d,%d,%d\n" % (l, e, t))
PY
expect_status 0 mt import "$T/s.csv" --into "$T/s.db" --run snap --ranks 4 --slots 3
snap "$T/s.db" eplb

# the real one: Qwen3-235B-A22B's counts from SGLang's recorder, one step
shared_or_skip
q=$MOETRACE_SHARED/data/real/qwen3_235b_a22b_sglang_counts/expert_load.csv
[ -f "$q" ] || skip "no Qwen3 snapshot in the shared data"
expect_status 0 mt import "$q" --into "$T/q.db" --run qwen --model qwen3-235b-a22b
snap "$T/q.db" eplb
exit 0
