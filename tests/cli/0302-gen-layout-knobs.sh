# moetrace gen: the EP layout given or derived, the workload knobs in the
# run's source, decode-only and prefill-only traffic, the phases recorded.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"

expect_status 0 mt gen --model deepseek-v3 --steps 3 --ranks 32 --slots 9 --run l1 -q "$T/db"
expect_status 0 mt gen --model deepseek-v3 --steps 3 --ranks 64 --run l2 -q "$T/db"
expect_status 0 mt gen --model deepseek-v3 --steps 3 --slots 16 --ranks-per-node 4 --run l3 -q "$T/db"
sqlite3 "$T/db" "SELECT name, ranks, slots, ranks_per_node FROM runs ORDER BY run" >"$T/layout"
printf 'l1|32|9|8\nl2|64|4|8\nl3|16|16|4\n' >"$T/want"
same_file "$T/layout" "$T/want"

# decode only with one request: one token per step, every step decode
expect_status 0 mt gen --model mixtral-8x7b --steps 50 --prefill-fraction 0 --decode-batch 1 --run dec -q "$T/db"
[ "$(sqlite3 "$T/db" "SELECT count(*), sum(phase = 2), sum(tokens = 1) FROM steps WHERE run = (SELECT run FROM runs WHERE name = 'dec')")" = "50|50|50" ] ||
	fail "decode-only run: $(sqlite3 "$T/db" "SELECT phase, tokens FROM steps WHERE run = 4 LIMIT 5")"
# prefill only, 300-token budget: every step prefill, 1..300 tokens
expect_status 0 mt gen --model llama4-maverick --steps 40 --prefill-fraction 1 --prefill-tokens 300 --run pre -q "$T/db"
[ "$(sqlite3 "$T/db" "SELECT count(*), sum(phase = 1), sum(tokens BETWEEN 1 AND 300) FROM steps WHERE run = (SELECT run FROM runs WHERE name = 'pre')")" = "40|40|40" ] ||
	fail "prefill-only run has other steps"
# the knobs given are recorded
expect_status 0 mt gen --model qwen3-30b-a3b --steps 5 --domains 2 --skew 0.5 --drift 0 --first-step 1000 --run knobs -q "$T/db"
[ "$(sqlite3 "$T/db" "SELECT source FROM runs WHERE name = 'knobs'")" = "gen seed=1 steps=5 domains=2 skew=0.5 drift=0" ] ||
	fail "source: $(sqlite3 "$T/db" "SELECT source FROM runs WHERE name = 'knobs'")"
[ "$(sqlite3 "$T/db" "SELECT min(step), max(step) FROM steps WHERE run = (SELECT run FROM runs WHERE name = 'knobs')")" = "1000|1004" ] ||
	fail "--first-step not honoured"
# fresh routing: recorded in the source, same schedule as the pooled default
expect_status 0 mt gen --model deepseek-v2-lite --steps 40 --seed 3 --run pooled -q "$T/db"
expect_status 0 mt gen --model deepseek-v2-lite --steps 40 --seed 3 --fresh-routing --run fresh -q "$T/db"
[ "$(sqlite3 "$T/db" "SELECT source FROM runs WHERE name = 'fresh'")" = "gen seed=3 steps=40 fresh-routing" ] ||
	fail "fresh source: $(sqlite3 "$T/db" "SELECT source FROM runs WHERE name = 'fresh'")"
sched() { sqlite3 "$T/db" "SELECT step, phase, tokens FROM steps WHERE run = (SELECT run FROM runs WHERE name = '$1') ORDER BY step"; }
[ "$(sched pooled)" = "$(sched fresh)" ] || fail "fresh routing changed the schedule"
exit 0
