#!/bin/sh
# replay checks that its algorithm can fill the layout before it reads any
# heat: --redundant 100000 with an algorithm that never puts an expert
# twice on a rank was refused only at the first decision, after scoring the
# whole window (28 s on a DeepSeek-V3 trace).  Here the window holds a
# malformed counts blob: a replay that reads before checking reports the
# blob, one that checks first reports the layout.  The same for --grid.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model mixtral-8x7b --steps 40 -q "$T/db"
expect_status 0 mt sql --write "$T/db" "UPDATE counts SET data = x'0104ff' WHERE step = 3 AND layer = 0"
msg="slots per rank for 8 experts: a rank would hold an expert twice, which 'keel' never does"
expect_status 2 mt replay --algo keel --redundant 100000 --window 10 --interval 10 --no-store "$T/db"
expect_grep "$T/err" "^moetrace replay: 25002 $msg$"
expect_nogrep "$T/err" "malformed"
expect_status 2 mt replay --algo keel --grid redundant=0,100000 --window 10 --interval 10 --no-store "$T/db"
expect_grep "$T/err" "^moetrace replay: --grid redundant=100000: 25002 $msg$"
expect_nogrep "$T/err" "malformed"
# before the window is checked against the trace, too
expect_status 2 mt replay --algo keel --redundant 100000 --window 100000 --no-store "$T/db"
expect_grep "$T/err" "$msg"
# nothing stored
[ "$(mt sql --format csv "$T/db" "SELECT count(*) FROM replays" | tail -n 1)" = 0 ] ||
	fail "a refused replay stored a row"
exit 0
