#!/bin/sh
# The store's value limits (docs/schema.md, "Limits"): steps within
# +-(2^53 - 1), a step's tokens 0 .. 2^53 - 1, first_layer 0 .. 2^20.
# Importers refuse a value past them naming file:line (or the key) and the
# field, with nothing written; the extremes themselves import and every
# reader does its arithmetic on them without overflow; a database holding
# a value past them (written by hand) is refused as corrupt, exit 2, by
# every reader rather than overflowing.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"
MAX=9007199254740991

# ---- importers: past the limit is refused where it was read
csv() { # NAME STEP...: two experts, one layer, one row per expert per step
	name=$1; shift
	{
		echo step,layer,expert,tokens
		for s in "$@"; do echo "$s,0,0,5"; echo "$s,0,1,3"; done
	} >"$T/$name.csv"
}
csv hi 0 9223372036854775806
expect_status 2 mt import "$T/hi.csv" --experts 2 --into "$T/new.db"
expect_grep "$T/err" "hi.csv:4: field 'step': step 9223372036854775806 is outside the range a trace holds \\(-$MAX to $MAX\\)"
[ ! -e "$T/new.db" ] || fail "a refused CSV import left a database"
csv lo -9223372036854775807 0
expect_status 2 mt import "$T/lo.csv" --experts 2 --into "$T/new.db"
expect_grep "$T/err" "lo.csv:2: field 'step': step -9223372036854775807 is outside"
csv just $((MAX + 1))
expect_status 2 mt import "$T/just.csv" --experts 2 --into "$T/new.db"
expect_grep "$T/err" "just.csv:2: field 'step'"

printf '{"step": 0, "layer": 0, "counts": [1, 2]}\n{"step": %s, "layer": 0, "counts": [1, 2]}\n' \
	$((MAX + 1)) >"$T/hi.jsonl"
expect_status 2 mt import "$T/hi.jsonl" --into "$T/new.db"
expect_grep "$T/err" "hi.jsonl:2: field 'step': step $((MAX + 1)) is outside"
printf '{"step": 0, "layer": 0, "tokens": %s, "counts": [1, 2]}\n' $((MAX + 1)) >"$T/tok.jsonl"
expect_status 2 mt import "$T/tok.jsonl" --into "$T/new.db"
expect_grep "$T/err" "tok.jsonl:1: field 'tokens': $((MAX + 1)) tokens in a step is outside"

if command -v python3 >/dev/null; then
	# TensorRT-LLM statistics keyed "{iter}_{layer}" (tests/data/README.md)
	mkdir -p "$T/trt"
	cp "$D/trtllm/meta_info.json" "$T/trt/"
	python3 - "$D" "$T/trt/rank0.safetensors" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import make_samples as m
n = json.load(open(sys.argv[1] + "/trtllm/meta_info.json"))["num_experts"]
t = {"9223372036854775806_3": [1] * n, "0_3": [2] * n}
open(sys.argv[2], "wb").write(m.safetensors(t, "I64"))
PY
	expect_status 2 mt import "$T/trt" --into "$T/new.db"
	expect_grep "$T/err" "rank0.safetensors: key '9223372036854775806_3': step 9223372036854775806 is outside"
	[ ! -e "$T/new.db" ] || fail "a refused TensorRT-LLM import left a database"
fi

# ---- the extremes import, and every reader subtracts them safely
csv ext -$MAX -$((MAX - 1)) 0 7 $((MAX - 1)) $MAX
expect_status 0 mt import "$T/ext.csv" --experts 2 --ranks 2 --topk 1 --into "$T/ext.db"
expect_status 0 mt info "$T/ext.db"
expect_grep "$T/out" "steps      6 \\(-$MAX \\.\\. $MAX\\), $((2 * MAX + 1 - 6)) missing"
expect_status 0 mt info --json "$T/ext.db"
expect_grep "$T/out" "\"first_step\": -$MAX, \"last_step\": $MAX, \"missing_steps\": $((2 * MAX + 1 - 6))"
expect_status 0 mt balance "$T/ext.db"
expect_status 0 mt compare --episodes 2 "$T/ext.db"
expect_status 0 mt top --snapshot "$T/ext.db"
expect_grep "$T/out" "\"to\": $MAX"
for k in heatmap timeline devices imbalance; do
	expect_status 0 mt render -o "$T/$k.png" "$T/ext.db" $k
done
expect_status 0 mt replay --window 2 --interval 2 --no-store "$T/ext.db"
# spans given on the command line are steps too: at most 2^53 - 1, so a
# decision's ordinal + interval + delay cannot overflow
expect_status 0 mt replay --window 2 --interval $MAX --no-store "$T/ext.db"
for c in "replay --no-store --interval 9223372036854775807" \
	"replay --no-store --window 9223372036854775807" \
	"replay --no-store --grid interval=9223372036854775807" \
	"report -o $T/rep --interval $((MAX + 1))"; do
	expect_status 2 mt $c "$T/ext.db"
	expect_grep "$T/err" "out of range \\[[01], $MAX\\]"
done

# ---- hostile databases: a value past the limits is a corrupt trace
expect_status 0 mt gen --model mixtral-8x7b --steps 6 --ranks 4 --slots 2 -q "$T/g.db"
hostile() { # NAME SQL: NAME.db = g.db changed by SQL
	cp "$T/g.db" "$T/$1.db"
	expect_status 0 mt sql --write "$T/$1.db" "$2"
}
hostile step "UPDATE steps SET step = 9223372036854775807 WHERE step = 5;
	UPDATE counts SET step = 9223372036854775807 WHERE step = 5"
hostile neg "UPDATE steps SET step = -9223372036854775807 WHERE step = 0;
	UPDATE counts SET step = -9223372036854775807 WHERE step = 0"
hostile cstep "UPDATE counts SET step = 9223372036854775807 WHERE step = 5"
hostile textstep "UPDATE counts SET step = 'x' WHERE step = 5"
hostile dstep "INSERT INTO deployed WITH RECURSIVE l(x) AS (SELECT 0 UNION ALL SELECT x + 1
	FROM l WHERE x < 31) SELECT 1, 9223372036854775807, x, 4, 2, static_phy2log(8, 4, 2) FROM l"
for v in step:steps:9223372036854775807 neg:steps:-9223372036854775807 \
	cstep:counts:9223372036854775807 dstep:deployed:9223372036854775807; do
	name=${v%%:*} rest=${v#*:}
	table=${rest%%:*} value=${rest#*:}
	for c in "info" "balance" "compare" "top --snapshot" "render -o $T/x.png" "export -o $T/x.csv --format csv"; do
		case $c in render*) set -- $c "$T/$name.db" heatmap ;; *) set -- $c "$T/$name.db" ;; esac
		expect_status 2 mt "$@"
		expect_grep "$T/err" "table $table holds step $value, outside the range a trace holds.*corrupt database"
	done
done
expect_status 2 mt info "$T/textstep.db"
expect_grep "$T/err" "table counts holds a step that is not an integer"

hostile first "UPDATE runs SET first_layer = 9223372036854775807"
for c in "balance" "export --placement deployed --format sglang -o $T/p.json" "place -o $T/p.json"; do
	expect_status 2 mt $c "$T/first.db"
	expect_grep "$T/err" "first_layer 9223372036854775807 is outside 0 to 1048576: corrupt database"
done
[ ! -e "$T/p.json" ] || fail "a placement was written for a corrupt run"

hostile tok "UPDATE steps SET tokens = 9223372036854775000 WHERE step = 3"
expect_status 2 mt info "$T/tok.db"
expect_grep "$T/err" "a step holds 9223372036854775000 tokens, outside the range a trace holds"
cp "$T/tok.db" "$T/tok2.db"
expect_status 2 mt merge --sum "$T/m.db" "$T/tok.db" "$T/tok2.db"
expect_grep "$T/err" "step 3: 9223372036854775000 tokens in .*corrupt database"
[ ! -e "$T/m.db" ] || fail "merge left a database after refusing a corrupt shard"
# each at the limit, their sum past it
hostile maxtok "UPDATE steps SET tokens = $MAX WHERE step = 3"
expect_status 0 mt info "$T/maxtok.db"
cp "$T/maxtok.db" "$T/maxtok2.db"
expect_status 2 mt merge --sum "$T/m.db" "$T/maxtok.db" "$T/maxtok2.db"
expect_grep "$T/err" "step 3: the tokens of '.*maxtok2.db' and the shards before it sum past $MAX"
[ ! -e "$T/m.db" ] || fail "merge left a database after an overflowing sum"
# 1100 steps of the most tokens a step holds: a total past an int64 says so
expect_status 0 mt gen --model mixtral-8x7b --steps 1100 -q "$T/many.db"
expect_status 0 mt sql --write "$T/many.db" "UPDATE steps SET tokens = $MAX"
expect_status 0 mt info "$T/many.db"
expect_grep "$T/out" "tokens     9223372036854775807 or more \\(the total passes an int64\\)"
exit 0
