#!/bin/sh
# The p99 of per-step imbalance is one quantity wherever it is printed: a
# replay's baseline p99 (overall and per layer) equals, on the same steps
# under the same placement, compare's p99/step of the static placement and
# balance's step-p99.  The replay keeps histograms with bins 0.05% wide, so
# it may differ by that much, not by the gap between two neighbouring steps
# (a short range puts few steps above the 99th percentile).
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 5 -q "$T/db"
# close: |a - b| <= 0.05% of b, plus 0.001 for two figures rounded to 3 decimals
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.0005 * b + 0.001) }'; }

# overall: the replay of steps 20..39 against compare fitted on 0..19,
# scored on 20..39, both from the static layout
expect_status 0 mt replay "$T/db" --steps 20:39 --start static --no-store --json
rp=$(tr ',' '\n' <"$T/out" | sed -n 's/.*"baseline_imbalance_p99": *\([0-9.]*\).*/\1/p' | head -1)
[ -n "$rp" ] || fail "no baseline_imbalance_p99 in replay --json"
expect_status 0 mt compare "$T/db" --steps 0:19 --algos static --format csv
cp=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "next_step_p99_imbalance") c = i }
	$1 == "overall" && $2 == "static" { print $c }' "$T/out")
[ -n "$cp" ] || fail "no static row in compare --format csv"
close "$rp" "$cp" || fail "replay baseline p99 $rp, compare static p99/step $cp"

# per layer: the replay's base-p99 column against balance's step-p99
expect_status 0 mt replay "$T/db" --steps 20:39 --start static --no-store
awk '/^layer base-mean/ { on = 1; next } on && NF == 6 { print $1, $4 }' "$T/out" >"$T/rp"
expect_status 0 mt balance "$T/db" --steps 20:39 --static
awk '$1 ~ /^[0-9]+$/ && NF == 8 { print $1, $6 }' "$T/out" >"$T/bp"
[ "$(wc -l <"$T/rp")" -eq 32 ] || fail "replay printed $(wc -l <"$T/rp") layer rows"
[ "$(wc -l <"$T/bp")" -eq 32 ] || fail "balance printed $(wc -l <"$T/bp") layer rows"
join "$T/rp" "$T/bp" >"$T/both"
while read -r l a b; do
	close "$a" "$b" || fail "layer $l: replay base-p99 $a, balance step-p99 $b"
done <"$T/both"
exit 0
