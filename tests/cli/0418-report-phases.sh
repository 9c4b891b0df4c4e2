# report: a trace with prefill and decode steps gets a page splitting the
# scored steps by phase (steps, assignments per step, per-step imbalance of
# the start placement and of each algorithm's); one phase gets none.
. "$(dirname "$0")/lib.sh"
mt place --list | grep -q "^eplb " || skip "no eplb in this build"

# 2 layers x 8 experts, 60 steps, every 10th a large prefill step
python3 - "$T/p.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens,phase\n")
    for s in range(60):
        pre = s % 10 == 0
        for l in range(2):
            for e in range(8):
                t = [90, 50, 30, 20, 10, 8, 5, 2][(e + l + s // 15) % 8] * (40 if pre else 1) + (e * s) % 7
                f.write("%d,%d,%d,%d,%s\n" % (s, l, e, t, "prefill" if pre else "decode"))
PY
expect_status 0 mt import "$T/p.csv" --into "$T/db" --run p --ranks 4 --slots 3
expect_status 0 mt report "$T/db" -o "$T/rep" --algos static,eplb
cp "$T/out" "$T/stdout"
expect_grep "$T/stdout" "^wrote $T/rep/report.pdf \(7 pages\)\$"
pdf_pages() { python3 -c 'import re,sys; print(len(re.findall(rb"/Type\s*/Page(?![s\w])", open(sys.argv[1],"rb").read())))' "$1"; }
[ "$(pdf_pages "$T/rep/report.pdf")" -eq 7 ] || fail "report.pdf has $(pdf_pages "$T/rep/report.pdf") pages"
# the split's figures: each phase's steps and assignments from the trace,
# and the two phases' per-step imbalance of the best weigh up to the best's
# mean per-step imbalance on the scored steps
python3 - "$T/p.csv" "$T/stdout" <<'PY' || fail "the phase split's figures"
import re, sys
out = open(sys.argv[2]).read()
b = re.search(r"^best: (\S+), mean per-step imbalance ([0-9.]+) on steps (\d+)-(\d+) ", out, re.M)
m = re.search(r"^phases on steps (\d+)-(\d+): prefill (\d+) steps, ([0-9.]+) assignments per layer "
              r"per step, imbalance ([0-9.]+) start, ([0-9.]+) (\S+); decode (\d+) steps, "
              r"([0-9.]+), ([0-9.]+) start, ([0-9.]+) (\S+)$", out, re.M)
assert b and m, out
c, d = int(b.group(3)), int(b.group(4))
assert (int(m.group(1)), int(m.group(2))) == (c, d)
assert m.group(7) == b.group(1) == m.group(12)
steps = {}
for line in open(sys.argv[1]).readlines()[1:]:
    s, l, e, t, ph = line.strip().split(",")
    s = int(s)
    if c <= s <= d:
        steps.setdefault(s, [ph, 0])[1] += int(t)
for ph, n_at, a_at in (("prefill", 3, 4), ("decode", 8, 9)):
    sel = [v[1] for v in steps.values() if v[0] == ph]
    assert int(m.group(n_at)) == len(sel), (ph, m.group(n_at), len(sel))
    assert m.group(a_at) == "%.1f" % (sum(sel) / len(sel) / 2), (ph, m.group(a_at))
n1, n2 = int(m.group(3)), int(m.group(8))
w = (n1 * float(m.group(6)) + n2 * float(m.group(11))) / (n1 + n2)
assert abs(w - float(b.group(2))) < 2e-4, (w, b.group(2))
PY

# decode only: one phase, no split page
expect_status 0 mt report "$T/db" -o "$T/rep2" --algos static,eplb --phase decode
expect_grep "$T/out" "^wrote $T/rep2/report.pdf \(6 pages\)\$"
expect_nogrep "$T/out" "^phases on"
exit 0
