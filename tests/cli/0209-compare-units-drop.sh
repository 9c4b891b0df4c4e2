#!/bin/sh
# compare, replay and place print an expert's bytes in one unit family with
# one value; compare shows token drop (and its JSON/CSV key) only when a
# capacity factor is given, since engines without a cap drop no tokens.
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(20):
        for l in range(2):
            for e in range(8):
                f.write("%d,%d,%d,%d\n" % (s, l, e, [80, 40, 20, 10, 6, 4, 2, 1][(e + l + s // 10) % 8]))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run u --ranks 4 --slots 3

# one expert's weights: the same text in compare, replay and place
expect_status 0 mt compare "$T/db" --algos static --model mixtral-8x7b
c=$(sed -n 's/.*; \([0-9.]* [kMGT]*B\) per expert (mixtral-8x7b.*/\1/p' "$T/out")
[ -n "$c" ] || { cat "$T/out"; fail "compare printed no bytes per expert"; }
expect_nogrep "$T/out" "drop"
expect_status 0 mt replay "$T/db" --algo static --interval 5 --model mixtral-8x7b
r=$(sed -n 's/.*, \([0-9.]* [kMGT]*B\) per expert$/\1/p' "$T/out")
[ "$c" = "$r" ] || { cat "$T/out"; fail "compare says '$c' per expert, replay '$r'"; }
# seconds are scaled, not "-0.00s" for a few milliseconds
expect_grep "$T/out" "^transfer ([0-9.]+ (us|ms|s|min)|0 s): per rebalance"
expect_status 0 mt replays "$T/db"
expect_grep "$T/out" "^ +1 +1 static .* (-?[0-9.]+ (us|ms|s|min)|0 s)$"
expect_status 0 mt place "$T/db" --algo static --current static --model mixtral-8x7b
expect_grep "$T/out" "copies x $c \\(mixtral-8x7b"
# the value is the preset's expert size in decimal units (bytes / 1e6)
python3 - "$c" <<'PY' || fail "bytes per expert not in MB"
import sys
v, u = sys.argv[1].split()
# mixtral-8x7b: 3 x 4096 x 14336 bf16 weights = 352321536 bytes
assert u == "MB" and abs(float(v) - 352321536 / 1e6) < 0.05, sys.argv[1]
PY

# token drop: absent without --capacity, in every format
expect_status 0 mt compare "$T/db" --algos static --format json
python3 - "$T/out" <<'PY' || fail "compare JSON has token drop without --capacity"
import json, sys
d = json.load(open(sys.argv[1]))
assert "capacity_factor" not in d
assert all("token_drop" not in a for a in d["algorithms"])
PY
expect_status 0 mt compare "$T/db" --algos static --format csv
expect_nogrep "$T/out" "token_drop"
[ "$(head -1 "$T/out" | tr , '\n' | wc -l)" = "$(sed -n 2p "$T/out" | tr , '\n' | wc -l)" ] ||
	fail "CSV header and row differ in width"
expect_status 0 mt compare "$T/db" --algos static --format markdown
expect_nogrep "$T/out" "drop"

# with --capacity: the column, its meaning, and the share
expect_status 0 mt compare "$T/db" --algos static --capacity 1.25
expect_grep "$T/out" "^drop = share of tokens over the capacity of 1\\.25 x mean device load per rank: .*drops those tokens or recomputes them"
expect_grep "$T/out" "^algorithm .* drop "
expect_status 0 mt compare "$T/db" --algos static --capacity 1.25 --format json
python3 - "$T/out" "$T/t.csv" <<'PY' || fail "compare --capacity JSON token drop"
import csv, json, sys
d = json.load(open(sys.argv[1]))
assert d["capacity_factor"] == 1.25
a = d["algorithms"][0]
# static: slot s holds expert s mod 8; recompute the drop on the next window
rows = list(csv.DictReader(open(sys.argv[2])))
dropped = tot = 0
for s in range(d["next_window"][0], d["next_window"][1] + 1):
    for l in range(2):
        c = [0] * 8
        for r in rows:
            if int(r["step"]) == s and int(r["layer"]) == l:
                c[int(r["expert"])] = int(r["tokens"])
        reps = [sum(1 for x in range(12) if x % 8 == e) for e in range(8)]
        load = [sum(c[x % 8] / reps[x % 8] for x in range(k * 3, k * 3 + 3)) for k in range(4)]
        cap = 1.25 * sum(load) / 4
        dropped += sum(max(0, v - cap) for v in load)
        tot += sum(load)
assert abs(a["token_drop"] - dropped / tot) < 1e-6, (a["token_drop"], dropped / tot)
PY
expect_status 0 mt compare "$T/db" --algos static --capacity 1.25 --format csv
expect_grep "$T/out" "transfer_seconds,token_drop,seconds"
