#!/bin/sh
# JSON lines take counts, steps, tokens, layers and the description's
# integers as JSON integers, written without a fraction or an exponent, in
# range, as the CSV reader takes them: a number that went through a double
# (2.0000000000000001 is 2 there, 1e-400 is 0, 9007199254740990.5 is
# 9007199254740990) is refused rather than stored rounded, and an integer
# past 64 bits is refused rather than clamped.  Each refusal names the
# file, the line and the field, exits 2 and writes nothing.  The compact
# lines `export` writes (a fast path) and the same lines spaced out (json-c)
# give one answer.
. "$(dirname "$0")/lib.sh"

bad() {
	printf '%s\n' "$1" >"$T/bad.jsonl"
	expect_status 2 mt import "$T/bad.jsonl" --into "$T/new.db"
	expect_grep "$T/err" "$2"
	[ ! -e "$T/new.db" ] || fail "a refused import left a database: $1"
}
# both the compact form and a spaced-out one, refused alike
both() {
	bad "$1" "$2"
	bad "$(printf '%s' "$1" | sed 's/,/, /g; s/:/: /g')" "$2"
}

both '{"step":0,"layer":0,"counts":[2.0000000000000001,1]}' \
	"bad.jsonl:1: field 'counts'\\[0\\]: 2.0000000000000001 is not a non-negative integer"
both '{"step":0,"layer":0,"counts":[4294967295.0000001,1]}' \
	"bad.jsonl:1: field 'counts'\\[0\\]: 4294967295.0000001 is not a non-negative integer"
both '{"step":0,"layer":0,"counts":[1,1e-400]}' "bad.jsonl:1: field 'counts'\\[1\\]: 1e-400 is not"
both '{"step":0,"layer":0,"counts":[3.0,1]}' "bad.jsonl:1: field 'counts'\\[0\\]: 3.0 is not"
both '{"step":0,"layer":0,"counts":[1,1e3]}' "bad.jsonl:1: field 'counts'\\[1\\]: 1e3 is not"
both '{"step":0,"counts":[[1,2],[3,4.0]]}' "bad.jsonl:1: field 'counts\\[1\\]'\\[1\\]: 4.0 is not"
both '{"step":9007199254740990.5,"layer":0,"counts":[1,1]}' \
	"bad.jsonl:1: field 'step': 9007199254740990.5 is not an integer"
both '{"step":1.0000000000000001,"layer":0,"counts":[1,1]}' \
	"bad.jsonl:1: field 'step': 1.0000000000000001 is not an integer"
both '{"step":0,"layer":0.0,"counts":[1,1]}' "bad.jsonl:1: field 'layer': 0.0 is not an integer"
both '{"step":0,"layer":0,"counts":[1,1],"tokens":5e0}' "bad.jsonl:1: field 'tokens': 5e0 is not"
# past 64 bits: refused, not clamped to the largest value json-c holds
both '{"step":0,"layer":0,"counts":[18446744073709551616,1]}' \
	"bad.jsonl:1: field 'counts\\[0\\]': integer 18446744073709551616 does not fit 64 bits"
both '{"step":99999999999999999999,"layer":0,"counts":[1,1]}' \
	"bad.jsonl:1: field 'step': integer 99999999999999999999 does not fit 64 bits"
both '{"step":9223372036854775808,"layer":0,"counts":[1,1]}' \
	"bad.jsonl:1: field 'step': 9223372036854775808 is out of range"
both '{"step":0,"layer":0,"counts":[18446744073709551615,1]}' \
	"bad.jsonl:1: field 'counts'\\[0\\]: 18446744073709551615 overflows a 32-bit count"
# the description's integers too
printf '%s\n' '{"moetrace":1,"layers":1,"experts":2.0}' '{"step":0,"layer":0,"counts":[1,1]}' >"$T/d.jsonl"
expect_status 2 mt import "$T/d.jsonl" --into "$T/new.db"
expect_grep "$T/err" "d.jsonl:1: field 'experts': 2.0 is not an integer"
# a time that reads as 0 would be no time at all
both '{"step":0,"layer":0,"counts":[1,1],"time":1e-400}' \
	"bad.jsonl:1: field 'time': 1e-400 is too small for a double"
[ ! -e "$T/new.db" ] || fail "a refused import left a database"

# what stays accepted, by both paths, to the same cells: integers at the
# edges, -0, a time of 0 (none) or with an exponent
good='{"step":-9007199254740991,"layer":0,"counts":[4294967295,0],"tokens":9007199254740991,"time":1.5e9}
{"step":9007199254740991,"layer":0,"counts":[-0,7],"time":0}'
printf '%s\n' "$good" >"$T/fast.jsonl"
printf '%s\n' "$good" | sed 's/,/, /g; s/:/: /g' >"$T/slow.jsonl"
expect_status 0 mt import "$T/fast.jsonl" --into "$T/db" --run fast
expect_status 0 mt import "$T/slow.jsonl" --into "$T/db" --run slow
cells() { mt sql --format csv "$T/db" "SELECT c.step, c.layer, counts_json(c.data), s.tokens, s.time
	FROM counts c JOIN steps s USING (run, step) WHERE run = (SELECT run FROM runs WHERE name = '$1')
	ORDER BY 1, 2"; }
[ "$(cells fast)" = "$(cells slow)" ] || fail "the fast path and json-c stored different cells"
cells fast | grep -q '^9007199254740991,0,"\[0,7\]",0,0\.0$' || { cells fast; fail "-0 or a time of 0 changed"; }
cells fast | grep -q '^-9007199254740991,0,"\[4294967295,0\]",9007199254740991,1500000000\.0$' ||
	{ cells fast; fail "the edge values changed"; }
exit 0
