# moetrace gen: a run with the preset's shape and EP layout, the same
# bytes for the same seed, other counts for another seed, every layer of
# every step summing to tokens x top-k with no expert above the tokens.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"

expect_status 0 mt gen --model deepseek-v2-lite --steps 60 --seed 7 "$T/a.db"
expect_grep "$T/out" "run 'gen-deepseek-v2-lite-seed7': 60 steps \\(0\\.\\.59\\) of deepseek-v2-lite, 26 layers x 64 experts, top-6, 8 ranks x 10 slots"
expect_status 0 mt info "$T/a.db"
expect_grep "$T/out" "26 MoE layers x 64 experts, top-6"
expect_grep "$T/out" "8 ranks x 10 slots"
expect_grep "$T/out" "source +gen seed=7 steps=60$"

dump() { sqlite3 "$1" "SELECT step, time, phase, tokens FROM steps ORDER BY step;
                        SELECT step, layer, hex(data) FROM counts ORDER BY step, layer"; }
expect_status 0 mt gen --model deepseek-v2-lite --steps 60 --seed 7 -q "$T/b.db"
[ ! -s "$T/out" ] || fail "-q printed: $(cat "$T/out")"
dump "$T/a.db" >"$T/a.txt"
dump "$T/b.db" >"$T/b.txt"
same_file "$T/a.txt" "$T/b.txt"
expect_status 0 mt gen --model deepseek-v2-lite --steps 60 --seed 8 -q "$T/c.db"
dump "$T/c.db" >"$T/c.txt"
cmp -s "$T/a.txt" "$T/c.txt" && fail "seeds 7 and 8 gave the same trace"

# per step and layer: sum = tokens x 6, max <= tokens (the SQL views of
# the store expand the blobs; without them, skip this part)
if mt sql "$T/a.db" "SELECT 1" >/dev/null 2>&1; then
	expect_status 0 mt sql --format csv "$T/a.db" "
		SELECT count(*) AS bad FROM (
		  SELECT h.step, h.layer, sum(h.tokens) AS s, max(h.tokens) AS m, st.tokens AS t
		  FROM expert_heat h JOIN steps st ON st.run = h.run AND st.step = h.step
		  GROUP BY h.step, h.layer)
		WHERE s != 6 * t OR m > t" 
	expect_grep "$T/out" "^0$"
	expect_nogrep "$T/out" "^[1-9]"
fi
# steps advance in time: decode 30-60 ms, prefill longer
sqlite3 "$T/a.db" "SELECT count(*) FROM steps a JOIN steps b ON b.step = a.step + 1
                   WHERE b.time - a.time < 0.027 OR b.time - a.time > 2" >"$T/bad"
[ "$(cat "$T/bad")" = 0 ] || fail "$(cat "$T/bad") step intervals out of range"
exit 0
