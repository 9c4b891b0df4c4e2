#!/bin/sh
# moetrace merge: a step some shard lacks is refused (exit 2, nothing
# written), naming the step, a shard that has it, the shard that lacks it
# and how many such steps there are; --common-steps merges the steps every
# shard has and says on stderr how many it left out.  Without the refusal,
# --sum of disjoint token sets lost the tokens of the steps one shard had.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
head='{"moetrace": 1, "layers": 2, "experts": 4, "topk": 1}'
step() { # STEP TOKENS: a decode step, TOKENS on expert 0 and on expert 1
	echo "{\"step\": $1, \"phase\": \"decode\", \"time\": 100, \"tokens\": $2, \"counts\": [[$2,0,0,0],[0,$2,0,0]]}"
}
shard() { # NAME LINES...
	_n=$1; shift
	printf '%s\n' "$head" "$@" >"$T/$_n.jsonl"
	expect_status 0 mt import "$T/$_n.jsonl" --into "$T/$_n.db" --run "$_n"
}
shard a2 "$(step 0 1)" "$(step 1 2)"
shard a3 "$(step 0 4)" "$(step 2 8)"

expect_status 2 mt merge --sum "$T/o.db" "$T/a2.db" "$T/a3.db"
expect_grep "$T/err" "^moetrace merge: step 1 of '$T/a2.db' is not in '$T/a3.db'; 2 step\(s\) are missing from some shard: --common-steps merges only the steps every shard has$"
[ ! -s "$T/out" ] || fail "a refused merge printed on stdout"
[ ! -e "$T/o.db" ] || fail "a refused merge left o.db"
# the shard that lacks a step may come first; an existing OUT is left as it was
expect_status 0 mt gen --model mixtral-8x7b --steps 2 -q "$T/keep.db"
sum=$(cksum <"$T/keep.db")
expect_status 2 mt merge --sum "$T/keep.db" "$T/a3.db" "$T/a2.db"
expect_grep "$T/err" "step 1 of '$T/a2.db' is not in '$T/a3.db'; 2 step"
[ "$(cksum <"$T/keep.db")" = "$sum" ] || fail "a refused merge changed keep.db"

# --common-steps: step 0 alone, and the count of the others on stderr
expect_status 0 mt merge --sum --common-steps "$T/o.db" "$T/a2.db" "$T/a3.db"
expect_grep "$T/out" "1 steps of 2 x 4"
expect_grep "$T/err" "^moetrace merge: left out 2 step\(s\) missing from some shard \(--common-steps\); the first, step 1 of '$T/a2.db', is not in '$T/a3.db'$"
[ "$(sqlite3 "$T/o.db" "SELECT group_concat(step || ':' || tokens) FROM steps")" = "0:5" ] ||
	fail "--common-steps merged other steps than step 0"
# every step in every shard: nothing on stderr
shard b2 "$(step 0 1)" "$(step 1 2)"
shard b3 "$(step 0 4)" "$(step 1 8)"
expect_status 0 mt merge --sum "$T/b.db" "$T/b2.db" "$T/b3.db"
[ ! -s "$T/err" ] || fail "a complete merge wrote to stderr"
[ "$(sqlite3 "$T/b.db" "SELECT group_concat(step || ':' || tokens) FROM steps")" = "0:5,1:10" ] ||
	fail "a complete merge lost tokens"
# no step in common: nothing to merge, with or without --common-steps
shard c3 "$(step 5 4)"
expect_status 2 mt merge --sum --common-steps "$T/c.db" "$T/a2.db" "$T/c3.db"
expect_grep "$T/err" "no step is in every shard: nothing to merge"
[ ! -e "$T/c.db" ] || fail "a refused merge left c.db"

# rank shards too: a step one rank dropped is refused
rec() { "$MOETRACE" record --model mixtral-8x7b --steps 6 --seed 2 --block "$@" >/dev/null ||
	fail "record $*"; }
for r in 0 1 2 3; do rec --run shard --shard $r "$T/rank$r.db"; done
sqlite3 "$T/rank2.db" "DELETE FROM counts WHERE step = 4; DELETE FROM steps WHERE step = 4"
expect_status 2 mt merge "$T/r.db" "$T/rank0.db" "$T/rank1.db" "$T/rank2.db" "$T/rank3.db"
expect_grep "$T/err" "step 4 of '$T/rank0.db' is not in '$T/rank2.db'; 1 step\(s\) are missing"
[ ! -e "$T/r.db" ] || fail "a refused merge left r.db"
