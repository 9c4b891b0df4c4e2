#!/bin/sh
# report: every line of the summary page stays inside the page's margins.
# A page too full at the smallest font of the table (12) gets a smaller
# font rather than losing its last lines off the bottom.  A line longer
# than the page's width (the replay's figures in serving units, which end in
# "tokens per step") is wrapped onto the next line instead of running off
# the right edge, where the PDF cuts it ("... at 266 tokens per s").
. "$(dirname "$0")/lib.sh"
command -v pdftotext >/dev/null || fail "pdftotext (poppler-utils) is needed (make deps-test)"
mt place --list | grep -q "^keel " || skip "no keel in this build"
expect_status 0 mt gen --model deepseek-v3 --steps 160 --seed 3 -q "$T/db"
# every default algorithm, and prefill and decode steps (one more page to
# list): a full page
expect_status 0 mt report "$T/db" -o "$T/rep"
expect_grep "$T/out" "report\.pdf \(7 pages\)"
# what the page shows: the words of page 1 inside its bounds (pdftotext
# -bbox leaves out what lies past the edge, as a viewer does), in order;
# none may lie in the right margin
pdftotext -bbox -f 1 -l 1 "$T/rep/report.pdf" "$T/box.html"
python3 - "$T/box.html" >"$T/text" <<'PY' || fail "a word of the summary page lies in its right margin"
import html as h, re, sys
html = open(sys.argv[1]).read()
width = float(re.search(r'<page width="([0-9.]+)"', html).group(1))
height = float(re.search(r'<page width="[0-9.]+" height="([0-9.]+)"', html).group(1))
words = re.findall(r'<word xMin="[0-9.]+" yMin="[0-9.]+" xMax="([0-9.]+)" yMax="([0-9.]+)">([^<]*)</word>', html)
assert len(words) > 100, len(words)
# the text starts 40 points from the left edge: it ends as far from the right
out = [(w, float(x1)) for x1, y1, w in words if float(x1) > width - 40 + 0.5]
assert not out, (width, out)
# and above the bottom edge
out = [(w, float(y1)) for x1, y1, w in words if float(y1) > height]
assert not out, (height, out)
print(h.unescape(" ".join(w for x1, y1, w in words)))
PY
expect_grep "$T/text" "per step \(estimates\): MoE time [0-9.]+ ms -> [0-9.]+ ms \(-?[0-9.]+% saved\), step time [0-9.]+ ms \(-?[0-9.]+% saved\), [0-9]+ -> [0-9]+ tokens/s at [0-9]+ tokens per step"
expect_grep "$T/text" "copies at [0-9]+ GB/s per rank inside a node \(nvlink4\) and [0-9]+ GB/s across \(ib-ndr-400g\); times are estimates"
# the list of pages ends with the phase page (the 7th)
expect_grep "$T/text" "7\. prefill and decode: each phase's steps and imbalance on the scored steps"
# the replay's figures of each phase apart, on the page as well
expect_grep "$T/text" "by phase: [0-9]+ decode steps, mean [0-9.]+ \(start [0-9.]+\); [0-9]+ prefill steps, mean [0-9.]+ \(start [0-9.]+\)"
