#!/bin/sh
# A run name or source that is not valid UTF-8 (the source of a Latin-1
# file name; a name that an older moetrace took from one, which import now
# refuses, asking for --run) is drawn with each invalid byte as U+FFFD:
# render and report draw it instead of failing ("input string not valid
# UTF-8" from cairo, with its glyphs leaked), and the JSON of info, top and
# place carries it the same way.
. "$(dirname "$0")/lib.sh"
mt render --help >/dev/null 2>&1 || skip "moetrace render is not built"

f="$T/caf$(printf '\351').csv" # Latin-1 e-acute
printf 'step,layer,expert,tokens\n0,0,0,5\n0,0,1,3\n1,0,0,4\n1,0,1,9\n2,0,0,1\n2,0,1,1\n' >"$f"
expect_status 2 mt import "$f" --ranks 2 --into "$T/db"
expect_grep "$T/err" "the name is not valid UTF-8 \\(give --run NAME\\)"
expect_status 0 mt import "$f" --ranks 2 --into "$T/db" --run cafe
# the name an older import gave it: the byte e9
expect_status 0 mt sql --write "$T/db" "UPDATE runs SET name = CAST(X'636166E9' AS TEXT)"
expect_status 0 mt sql --format csv "$T/db" "SELECT hex(name) FROM runs"
expect_grep "$T/out" "^636166E9$"
for k in heatmap timeline devices imbalance; do
	for ext in png svg pdf; do
		expect_status 0 mt render -o "$T/$k.$ext" "$T/db" $k
		[ -s "$T/$k.$ext" ] || fail "render $k .$ext wrote nothing"
	done
done
expect_status 0 mt report -o "$T/rep" "$T/db"
[ -s "$T/rep/report.pdf" ] || fail "report wrote no PDF"
# selected by that name, and a --title with an invalid byte the same way
expect_status 0 mt render -o "$T/t.png" --run "caf$(printf '\351')" "$T/db" heatmap
expect_status 0 mt render -o "$T/t.png" --title "x$(printf '\377')y" "$T/db" heatmap
# JSON outputs are UTF-8: the name with U+FFFD, parsed by a strict reader
if command -v python3 >/dev/null; then
	for c in "info --json" "top --snapshot" "place --json" "compare --format json"; do
		expect_status 0 mt $c "$T/db"
		python3 -c 'import json, sys
s = open(sys.argv[1], "rb").read().decode("utf-8")  # strict
assert "caf\ufffd" in s, s[:200]
json.loads(s)' "$T/out" || fail "$c: not UTF-8 JSON with the name as caf U+FFFD"
	done
fi
# the interactive top's header, in a UTF-8 terminal
if command -v script >/dev/null && [ "${MOETRACE_VALGRIND:-0}" != 1 ]; then
	LC_ALL=C.UTF-8 TERM=xterm script -qec "'$MOETRACE' top --iterations 1 '$T/db'" \
		"$T/typescript" </dev/null >/dev/null 2>&1 || fail "interactive top failed"
	grep -q "run 'caf$(printf '\357\277\275')'" "$T/typescript" ||
		{ cat -v "$T/typescript" | head -5 >&2; fail "top's header does not show caf U+FFFD"; }
fi
exit 0
