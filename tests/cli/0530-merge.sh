#!/bin/sh
# moetrace merge: rank shards recorded with the same seed add up to exactly
# the unsharded recording; overlapping, mismatched, incomplete or untagged
# shards, and a step some shard lacks (without --common-steps), are refused
# with exit 2 and no output file.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
# mixtral-8x7b: 32 layers x 8 experts on 4 ranks x 3 slots (4 redundant slots)
rec() { "$MOETRACE" record --model mixtral-8x7b --steps 25 --seed 9 --block "$@" >/dev/null ||
	fail "record $*"; }
rec --run full "$T/full.db"
for r in 0 1 2 3; do rec --run shard --shard $r "$T/rank$r.db"; done
# a shard alone: only the experts its rank holds have tokens
sqlite3 "$T/rank1.db" "SELECT source FROM runs" | grep -q "shard rank=1" || fail "no rank tag"

expect_status 0 mt merge "$T/out.db" "$T/rank0.db" "$T/rank1.db" "$T/rank2.db" "$T/rank3.db"
expect_grep "$T/out" "merged 4 shard\(s\) into run 'shard-merged' .*: 25 steps of 32 x 8, 1 placement"
q="SELECT group_concat(step || ':' || layer || ':' || hex(data), ' ') FROM
   (SELECT * FROM counts ORDER BY step, layer)"
[ "$(sqlite3 "$T/full.db" "$q")" = "$(sqlite3 "$T/out.db" "$q")" ] ||
	fail "merged counts differ from the unsharded recording"
q="SELECT group_concat(step || ':' || phase || ':' || tokens, ' ') FROM (SELECT * FROM steps ORDER BY step)"
[ "$(sqlite3 "$T/full.db" "$q")" = "$(sqlite3 "$T/out.db" "$q")" ] ||
	fail "merged steps (phase, tokens) differ from the unsharded recording"
[ "$(sqlite3 "$T/out.db" "SELECT count(*) FROM deployed")" = 32 ] || fail "placement not copied"
expect_status 0 mt info "$T/out.db"

# refusals: nothing written (a copy of rank 0: the same file twice is
# refused before its rank is read, tests/cli/0940-merge-shard-twice.sh)
cp "$T/rank0.db" "$T/again0.db"
expect_status 2 mt merge "$T/bad.db" "$T/rank0.db" "$T/again0.db" "$T/rank2.db" "$T/rank3.db"
expect_grep "$T/err" "shards overlap: .* both record rank 0"
expect_status 2 mt merge "$T/bad.db" "$T/rank0.db" "$T/rank1.db" "$T/rank2.db"
expect_grep "$T/err" "1 of 4 ranks have no shard \(first missing: rank 3\)"
expect_status 2 mt merge "$T/bad.db" "$T/rank0.db" "$T/full.db"
expect_grep "$T/err" "is not a rank shard"
"$MOETRACE" record --model deepseek-v2-lite --steps 2 --shard 1 --run shard "$T/other.db" >/dev/null
expect_status 2 mt merge "$T/bad.db" "$T/rank0.db" "$T/other.db"
expect_grep "$T/err" "shards disagree on shape"
expect_status 2 mt merge "$T/rank0.db" "$T/rank0.db" "$T/rank1.db"
expect_grep "$T/err" "is also shard"
[ ! -e "$T/bad.db" ] || fail "a refused merge left bad.db"
# a shard recorded under the wrong rank is caught by the placement check
cp "$T/rank2.db" "$T/liar.db"
sqlite3 "$T/liar.db" "UPDATE runs SET source = 'shard rank=3; moved'"
expect_status 2 mt merge "$T/bad.db" "$T/rank0.db" "$T/rank1.db" "$T/liar.db" "$T/rank2.db"
expect_grep "$T/err" "placement puts it on no slot of rank 3"
[ ! -e "$T/bad.db" ] || fail "a refused merge left bad.db"

# --partial merges what there is; --sum adds untagged partial traces
expect_status 0 mt merge --partial --name part "$T/p.db" "$T/rank0.db" "$T/rank1.db"
expect_grep "$T/out" "warning: 2 rank\(s\) had no shard"
cp "$T/full.db" "$T/full2.db"
expect_status 0 mt merge --sum --name twice "$T/s.db" "$T/full.db" "$T/full2.db"
a=$(sqlite3 "$T/full.db" "SELECT sum(tokens) FROM steps")
b=$(sqlite3 "$T/s.db" "SELECT sum(tokens) FROM steps")
[ "$b" -eq $((2 * a)) ] || fail "--sum: tokens $b, expected $((2 * a))"

# a step one shard lacks (dropped there) is refused; --common-steps merges
# the rest and says on stderr what it left out
cp "$T/rank3.db" "$T/gap3.db"
sqlite3 "$T/gap3.db" "DELETE FROM counts WHERE step = 7; DELETE FROM steps WHERE step = 7"
expect_status 2 mt merge --name gap "$T/g.db" "$T/rank0.db" "$T/rank1.db" "$T/rank2.db" "$T/gap3.db"
expect_grep "$T/err" "step 7 of '.*/rank0.db' is not in '.*/gap3.db'; 1 step\(s\) are missing"
[ ! -e "$T/g.db" ] || fail "a refused merge left g.db"
expect_status 0 mt merge --common-steps --name gap "$T/g.db" "$T/rank0.db" "$T/rank1.db" \
	"$T/rank2.db" "$T/gap3.db"
expect_grep "$T/out" "24 steps of 32 x 8"
expect_grep "$T/err" "left out 1 step\(s\) missing from some shard"
[ "$(sqlite3 "$T/g.db" "SELECT count(*) FROM steps WHERE step = 7")" = 0 ] || fail "step 7 merged"
