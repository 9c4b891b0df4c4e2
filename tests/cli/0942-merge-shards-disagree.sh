#!/bin/sh
# moetrace merge takes nothing from one shard that another contradicts:
# rank shards that differ in the phase of a step, shards that differ in
# top-k, model, ranks per node or first layer are refused (exit 2, both
# shards and both values named, nothing written), where the merged run took
# the first shard's.  Under --sum a step prefill in one shard and decode in
# another is stored as of unknown phase, and said so.
# Times differ legitimately between ranks: a step takes the earliest a
# shard gives.  Under --sum tokens add up, and a shard that routed tokens
# but gives their number as 0 (unknown) beside one that gives it is refused.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
c='[[1,0,0,0],[0,1,0,0]]'
shard() { # NAME TOPK PHASE TIME TOKENS [DESCRIPTION FIELDS]
	printf '{"moetrace": 1, "layers": 2, "experts": 4, "topk": %s%s}\n' "$2" "${6:-}" >"$T/$1.jsonl"
	printf '{"step": 0, "phase": "%s", "time": %s, "tokens": %s, "counts": %s}\n' "$3" "$4" "$5" "$c" >>"$T/$1.jsonl"
	printf '{"step": 1, "phase": "decode", "time": %s, "tokens": %s, "counts": %s}\n' "$4" "$5" "$c" >>"$T/$1.jsonl"
	expect_status 0 mt import "$T/$1.jsonl" --into "$T/$1.db" --run "$1"
}
refused() { # PATTERN SHARD...
	_p=$1; shift
	expect_status 2 mt merge --sum "$T/o.db" "$@"
	expect_grep "$T/err" "$_p"
	[ ! -e "$T/o.db" ] || fail "a refused merge left o.db"
}
shard p1 1 prefill 100.5 1
shard p2 1 decode 200.25 1
# under --sum each shard routed its own tokens: a step prefill in one and
# decode in another is a step of both, of unknown phase, and said so
expect_status 0 mt merge --sum "$T/o.db" "$T/p1.db" "$T/p2.db"
expect_grep "$T/err" "^moetrace merge: 1 step\(s\) whose shards give different phases are stored as of unknown phase$"
[ "$(sqlite3 "$T/o.db" "SELECT group_concat(step || ':' || phase, ' ') FROM steps")" = "0:0 1:2" ] ||
	fail "mixed phases: $(sqlite3 "$T/o.db" "SELECT * FROM steps")"
rm -f "$T/o.db"
# a shard that does not know the phase beside one that does: unknown too,
# and counted whichever shard comes first
shard u 1 unknown 100 1
for order in "u p1" "p1 u"; do
	set -- $order
	expect_status 0 mt merge --sum "$T/o.db" "$T/$1.db" "$T/$2.db"
	expect_grep "$T/err" "^moetrace merge: 1 step\(s\) whose shards give different phases"
	[ "$(sqlite3 "$T/o.db" "SELECT group_concat(step || ':' || phase, ' ') FROM steps")" = "0:0 1:2" ] ||
		fail "unknown beside prefill ($order): $(sqlite3 "$T/o.db" "SELECT * FROM steps")"
	rm -f "$T/o.db"
done
# rank shards saw the same tokens: they must agree
rec() { "$MOETRACE" record --model mixtral-8x7b --steps 3 --seed 9 --block "$@" >/dev/null ||
	fail "record $*"; }
for r in 0 1 2 3; do rec --run shard --shard $r "$T/rank$r.db"; done
ph=$(sqlite3 "$T/rank2.db" "SELECT phase FROM steps WHERE step = (SELECT min(step) FROM steps)")
sqlite3 "$T/rank2.db" "UPDATE steps SET phase = 3 - phase WHERE step = (SELECT min(step) FROM steps)"
expect_status 2 mt merge "$T/o.db" "$T/rank0.db" "$T/rank1.db" "$T/rank2.db" "$T/rank3.db"
expect_grep "$T/err" "^moetrace merge: step [0-9]+: '$T/rank0.db' records it as [a-z]+, '$T/rank2.db' as [a-z]+: shards must agree on the phase of a step$"
[ ! -e "$T/o.db" ] || fail "a refused merge left o.db"
[ "$ph" -ge 1 ] || fail "the recorder gave no phase to shard 2's first step"
shard k2 2 prefill 100 1
refused "^moetrace merge: shards disagree on the top-k: '$T/k2.db' run 'k2' has 2, '$T/p1.db' run 'p1' has 1$" "$T/p1.db" "$T/k2.db"
shard m 1 prefill 100 1
sqlite3 "$T/m.db" "UPDATE runs SET model = 'my-moe'"
refused "shards disagree on the model: '$T/m.db' run 'm' is 'my-moe', '$T/p1.db' run 'p1' is ''" "$T/p1.db" "$T/m.db"
shard f0 1 prefill 100 1 ', "first_layer": 0, "ranks": 2, "slots": 2'
shard f3 1 prefill 100 1 ', "first_layer": 3, "ranks": 2, "slots": 2'
refused "shards disagree on the first layer: '$T/f3.db' run 'f3' has 3, '$T/f0.db' run 'f0' has 0" "$T/f0.db" "$T/f3.db"
shard n1 1 prefill 100 1 ', "ranks": 2, "slots": 2, "ranks_per_node": 1'
refused "shards disagree on the ranks per node: '$T/n1.db' run 'n1' has 1, '$T/f0.db' run 'f0' has 2" "$T/f0.db" "$T/n1.db"

# times: the earliest, whichever shard gives it; tokens summed
shard q1 1 prefill 200.25 3
shard q2 1 prefill 100.5 4
expect_status 0 mt merge --sum "$T/o.db" "$T/q1.db" "$T/q2.db"
[ "$(sqlite3 "$T/o.db" "SELECT group_concat(step || ':' || phase || ':' || time || ':' || tokens, ' ') FROM steps")" = \
	"0:1:100.5:7 1:2:100.5:7" ] || fail "merged steps: $(sqlite3 "$T/o.db" "SELECT * FROM steps")"
[ "$(sqlite3 "$T/o.db" "SELECT topk FROM runs")" = 1 ] || fail "top-k not kept"
rm -f "$T/o.db"
# a time of 0 is unknown: the other shard's is kept
shard z 1 prefill 0 4
expect_status 0 mt merge --sum "$T/o.db" "$T/z.db" "$T/q1.db"
[ "$(sqlite3 "$T/o.db" "SELECT group_concat(time, ' ') FROM steps")" = "200.25 200.25" ] ||
	fail "an unknown time replaced a known one"
rm -f "$T/o.db"
# tokens 0 beside a routed step: unknown, and the sum would be short
shard t0 1 prefill 100 0
refused "^moetrace merge: step 0: '$T/t0.db' routed tokens but gives their number as 0 \(unknown\), '$T/q1.db' gives 3: their sum would not be the step's tokens$" "$T/q1.db" "$T/t0.db"
cp "$T/t0.db" "$T/t1.db"
expect_status 0 mt merge --sum "$T/o.db" "$T/t0.db" "$T/t1.db"
[ "$(sqlite3 "$T/o.db" "SELECT group_concat(tokens, ' ') FROM steps")" = "0 0" ] ||
	fail "shards that all give no tokens merged to a number"
