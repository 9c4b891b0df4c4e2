# top in a terminal (tmux): follows a trace `moetrace record` is writing,
# the bars of a selected layer match --snapshot and `place --json` for the
# same window; the screen read at 120x40, 80x24, 160x45, 240x70 and 200x60
# (header whole, layer count, sort indicator, function-key bar, table and
# bars apart, bars grouped by node); a mouse press selects a row and sorts
# by a column; `/` jumps to a layer; scrubbing while paused; help, sort,
# reverse, `a` skips static; the terminal is restored after q, Ctrl-C and
# SIGTERM.  A locked database shows "waiting" and keys still work.
# TERM=vt100 / NO_COLOR: ASCII, no colour.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || skip "tmux not installed"
command -v python3 >/dev/null || skip "python3 not installed"
tm() { tmux -S "$T/sock" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; stop_left "$T"; rm -rf "$T"' EXIT
cap() { tm capture-pane -p -t "$1" >"$T/screen"; }
# wait_for SESSION REGEX: until the screen shows REGEX (at most ~60 s: a
# bound for a loaded machine, not a speed asked of top)
wait_for() {
	i=0
	while [ $i -lt 600 ]; do
		cap "$1"
		grep -Eq -- "$2" "$T/screen" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	cat "$T/screen" >&2
	fail "the screen never showed /$2/"
}
# screen_ok SESSION ROWS COLS SORTGLYPH: what every size must show whole
screen_ok() {
	i=0
	until cap "$1" && python3 "$T/screen.py" "$T/screen" "$2" "$3" "$4" 2>"$T/screen.err"; do
		sleep 0.1; i=$((i + 1))
		[ $i -lt 300 ] || { cat "$T/screen" "$T/screen.err" >&2; fail "screen at $3x$2"; }
	done
}
# until_screen SESSION MESSAGE CMD...: read the screen again until CMD
# (given the screen file last) succeeds.  tmux may be captured while top's
# refresh is half written (the header already turned, the rows not yet), so
# a check of the table after a wait for the header polls too.
until_screen() {
	s=$1 msg=$2
	shift 2
	i=0
	until cap "$s" && "$@" "$T/screen" 2>"$T/until.err"; do
		sleep 0.1; i=$((i + 1))
		[ $i -lt 100 ] || { cat "$T/screen" "$T/until.err" >&2; fail "$msg"; }
	done
}
# sorted_by KEY DIRECTION SCREEN: the table's rows are sorted by the layer
# or the "now" column
cat >"$T/sorted.py" <<'PY'
import re, sys
key, way, screen = sys.argv[1:4]
rows = [m for m in (re.match(r"^\s+(\d+)\s+(\d+\.\d+)", l) for l in open(screen, encoding="utf-8")) if m]
v = [int(m.group(1)) if key == "layer" else float(m.group(2)) for m in rows]
assert len(v) >= 5 and v == sorted(v, reverse=way == "desc"), v
PY
sorted_by() { python3 "$T/sorted.py" "$@"; }
# press SESSION ROW COL: a mouse press and release (SGR, 1-based), as a
# terminal sends them
press() {
	tm send-keys -t "$1" -l "$(printf '\033[<0;%d;%dM' "$3" "$2")"
	tm send-keys -t "$1" -l "$(printf '\033[<0;%d;%dm' "$3" "$2")"
}
cat >"$T/screen.py" <<'PY'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
rows, cols, glyph = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if lines and lines[-1] == "":
    lines.pop()
assert len(lines) == rows, ("lines", len(lines))
assert all(len(l) <= cols for l in lines), "a line wider than the terminal"
# the header: the run and its whole shape, never "5" for "58 layers"
assert lines[0].startswith("run 'live'"), lines[0]
assert re.search(r"  58 layers( x 256 experts)?( |$)", lines[0]), lines[0]
assert re.match(r"step \d+ \[", lines[1]), lines[1]
# the table: sort named with its direction, the column marked too
assert re.match(r" Layers  sort: (layer|now|after|gain|moves)" + re.escape(glyph), lines[2]), lines[2]
assert glyph in lines[3] and re.match(r"layer.*now +after +gain +hot +share +moves +trend", lines[3]), lines[3]
# htop's function-key bar
assert re.match(r"F1Help  F2Algo  F3Find  .*F10Quit", lines[-1]), lines[-1]
side = cols >= 150 and rows >= 30
if side:
    # the table and the bars apart: a rule between them on every body row,
    # and a trend of 25 cells or more
    tw = max(80, min(130, cols // 2))
    for l in lines[3:rows - 1]:
        assert l[tw - 1] == "\u2502", ("no rule at", tw - 1, l)
    trend = lines[4][54:tw - 1]
    assert len(trend.strip()) >= 25, ("trend", trend)
    assert lines[2][tw:].startswith(" Layer "), lines[2]
    right = [l[tw:] for l in lines[2:rows - 1]]
else:
    right = lines[3:rows - 1]
# the bars: a title with the mean, and nodes of 8 ranks never split
t = [l for l in right if re.match(r" Layer \d+ (device )?load per rank", l)]
assert t and "mean " in t[0], right
labels = [re.match(r"r(\d+)(?:-(\d+))?\s", l) for l in right]
spans = [(int(m.group(1)), int(m.group(2) or m.group(1))) for m in labels if m]
assert spans and spans[-1][1] == 63, spans
assert all(a // 8 == b // 8 for a, b in spans), ("a row spans two nodes", spans)
nodes = [l for l in right if re.match(r"\u2500+node \d+: ranks \d+-\d+ ", l)]
assert not nodes or len(nodes) == 8, nodes
PY
header_step() { cap "$1"; sed -n '2s/^step \([0-9]*\) .*/\1/p' "$T/screen"; }
# start SESSION ROWS COLS ENV... -- ARGS: top in a new tmux session; the
# shell around it records the terminal state once top has exited
start() {
	s=$1 rows=$2 cols=$3
	shift 3
	envs=""
	while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
	shift
	cat >"$T/$s.sh" <<SH
trap '' INT # Ctrl-C is for top (which handles it), not for this shell
env $envs "$MOETRACE" top $*
echo \$? >"$T/$s.status"
stty -a >"$T/$s.stty"
sleep 600
SH
	tm new-session -d -s "$s" -x "$cols" -y "$rows" "exec sh $T/$s.sh"
}
top_pid() { ps -o pid= --ppid "$(tm display-message -p -t "$1" '#{pane_pid}')" | tr -d ' '; }
terminal_restored() { # SESSION: top exited and left a sane terminal
	i=0
	while [ ! -s "$T/$1.stty" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
	[ -s "$T/$1.stty" ] || fail "top in session $1 did not exit"
	grep -Eq '(^| )icanon( |$)' "$T/$1.stty" || fail "icanon not restored: $(cat "$T/$1.stty")"
	grep -Eq '(^| )echo( |$)' "$T/$1.stty" || fail "echo not restored: $(cat "$T/$1.stty")"
}

# ---- a live trace ------------------------------------------------------------
# 120 steps at 8 a second: 15 s, so that top, however slowly it starts on
# a loaded machine, still finds the recording live (it starts in under a
# second; under valgrind, make check-valgrind, in seconds: 4 a second there)
rate=8
[ "${MOETRACE_VALGRIND:-0}" = 1 ] && rate=4
mt record --model deepseek-v3 --steps 120 --rate $rate --run live "$T/live.db" >"$T/rec.out" 2>&1 &
rec=$!
i=0
until mt top --snapshot "$T/live.db" >/dev/null 2>&1; do
	sleep 0.1; i=$((i + 1)); [ $i -lt 600 ] || fail "the recorder wrote no run"
done
start live 40 120 LANG=C.UTF-8 TERM=xterm-256color -- --delay-ms 100 --window 64 "$T/live.db"
wait_for live '^step [0-9]+ \[live\]'
s1=$(header_step live)
[ -n "$s1" ] || fail "no step in the header"
[ "$s1" -lt 119 ] || skip "the 30 s recording ended before top showed it (machine too busy)"
i=0
until s2=$(header_step live) && [ -n "$s2" ] && [ "$s2" -gt "$s1" ]; do
	i=$((i + 1)); [ $i -lt 300 ] || fail "header step did not advance: '$s1' -> '$s2'"
	sleep 0.1
done
wait "$rec" || fail "record failed: $(cat "$T/rec.out")"
wait_for live '^step 119 '
# colour is on in this terminal (the NO_COLOR check below can fail)
tm capture-pane -e -p -t live | grep -Eq "$(printf '\033')\\[([0-9;]*;)?3[0-7]m" ||
	fail "no colour under TERM=xterm-256color"

# select layer 3 and compare the bars with --snapshot and place --json once
# the after column is fitted on the final window's steps before it (0-55)
# and scored on the window
tm send-keys -t live j j j
wait_for live 'Layer 3 device load'
mt top --snapshot --layer 3 --window 64 "$T/live.db" >"$T/snap.json" || fail "snapshot failed"
mt place "$T/live.db" --steps 0:55 --layer 3 --current static --json >"$T/place.json" ||
	fail "place failed"
cat >"$T/bars.py" <<'PY'
import json, re, sys
snap, place = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
lines = open(sys.argv[3], encoding="utf-8").read().splitlines()
s = snap["selected"]
assert snap["window"]["from"] == 56 and snap["window"]["to"] == 119, snap["window"]
E, R, S = snap["run"]["experts"], place["ranks"], place["slots"]
p2l = [l for l in place["layers"] if l["layer"] == 3][0]["phy2log"]
cnt = [0] * E
for e in p2l: cnt[e] += 1
place_after = [sum(s["heat"][e] / cnt[e] for e in p2l[r * S:(r + 1) * S]) for r in range(R)]
assert all(abs(a - b) < 1e-3 for a, b in zip(s["after"], place_after)), "snapshot != place"
def fmt(x):
    a = abs(x)
    if a < 9999.5: return "%.0f" % x
    if a < 999.95e3: return "%.1fk" % (x / 1e3)
    if a < 999.95e6: return "%.1fM" % (x / 1e6)
    return "%.1fG" % (x / 1e9)
num = re.compile(r"^\d+(\.\d)?[kMG]?$")
rows = 0
for line in lines:
    m = re.match(r"^r(\d+)(?:-(\d+))?\s", line)
    if not m:
        continue
    r0 = int(m.group(1)); r1 = int(m.group(2) or r0)
    nums = [t for t in line.split()[1:] if num.match(t)]
    want = [fmt(max(s["before"][r0:r1 + 1])), fmt(max(place_after[r0:r1 + 1]))]
    assert nums == want, (line, nums, want)
    rows += 1
covered = max(int(m2.group(2) or m2.group(1)) for m2 in
              (re.match(r"^r(\d+)(?:-(\d+))?\s", l) for l in lines) if m2)
assert rows >= 8 and covered == R - 1, (rows, covered)
PY
i=0
until cap live && ! grep -q 'fitting' "$T/screen" &&
	python3 "$T/bars.py" "$T/snap.json" "$T/place.json" "$T/screen" 2>"$T/bars.err"; do
	sleep 0.2; i=$((i + 1))
	[ $i -lt 100 ] || { cat "$T/screen" "$T/bars.err" >&2; fail "bars differ from the snapshot"; }
done

# scrub back a quarter window, follow again, double the window
tm send-keys -t live '<'
wait_for live 'window 64 steps: 40\.\.103  \(scrubbed\)'
wait_for live '^step 119 \[scrub\]'
tm send-keys -t live f
wait_for live 'window 64 steps: 56\.\.119(  |$)' # following again: no '(scrubbed)'
tm send-keys -t live +
wait_for live 'window 128 steps: 0\.\.119' # from the run's first step, not -8

# scrubbing while paused moves the window at once
tm send-keys -t live ' '
wait_for live '^step 119 \[PAUSED\]'
tm send-keys -t live '<'
wait_for live 'window 128 steps: 0\.\.87  \(scrubbed\)'
wait_for live '\[PAUSED\]' # still paused
tm send-keys -t live f ' '
wait_for live 'window 128 steps: 0\.\.119(  |$)'
wait_for live '^step 119 \[idle\]'

screen_ok live 40 120 '▲'
# sort by imbalance now: the table's now column descends
tm send-keys -t live s
wait_for live 'sort: now▼'
until_screen live "not sorted by now" sorted_by now desc
# reversed: ascending, the indicator turned
tm send-keys -t live r
wait_for live 'sort: now▲'
until_screen live "not sorted by now, reversed" sorted_by now asc
screen_ok live 40 120 '▲'
# a press on the "layer" column name sorts by layer; on a row selects it
press live 4 3
wait_for live 'sort: layer▲'
until_screen live "not sorted by layer" sorted_by layer asc
row=$(grep -n '^    7 ' "$T/screen" | cut -d: -f1)
[ -n "$row" ] || fail "layer 7 not on the screen"
press live "$row" 10
wait_for live '^ Layer 7 device load'
# `/` jumps to a layer; a layer the run lacks says so
tm send-keys -t live / 4 2
wait_for live 'jump to layer \(0-57, .*: 42_'
tm send-keys -t live Enter
wait_for live '^ Layer 42 device load'
wait_for live '^   42 ' # layer 42 shown in the table
tm send-keys -t live / 9 9 Enter
wait_for live 'no layer 99: the run has 58 layers'
# `a`: the next rebalancing algorithm, never "static" (no rebalancing)
for want in eplb eplb-hier flashlb swift keel eplb; do
	tm send-keys -t live a
	wait_for live "after: $want( |\$)"
done

# resize: 80x24 folds the panels, 200x60 puts them side by side
tm resize-window -t live -x 80 -y 24
wait_for live '^r0-7 ' # 8 bar rows: one node of 8 ranks a row
screen_ok live 24 80 '▲'
wait_for live '^ Layer 42 device load'
wait_for live '^ Layer 42 imbalance, 80 steps  now [0-9.]+  max [0-9.]+  prefill underlined$'
tm resize-window -t live -x 160 -y 45
wait_for live '^ Layers .* Layer 42 device load'
screen_ok live 45 160 '▲'
wait_for live 'node 7: ranks 56-63'
tm resize-window -t live -x 240 -y 70
wait_for live '^ Layers .* Layer 42 device load'
screen_ok live 70 240 '▲'
# too small: one line that fits, no wrapping
tm resize-window -t live -x 40 -y 10
wait_for live '^too small: need 60x16$'
one_line() { [ "$(grep -c . "$1")" -eq 1 ]; }
until_screen live "the too-small message wrapped" one_line
tm resize-window -t live -x 200 -y 60
wait_for live '^ Layers .* Layer 42 device load'
# the capture may catch the redraw half way: poll until the rows are there
i=0
while :; do
	n=$(grep -Ec '^ +[0-9]+ +[0-9]+\.[0-9]{3} ' "$T/screen" || true)
	[ "$n" -lt 55 ] && [ $i -lt 50 ] || break
	sleep 0.1
	cap live
	i=$((i + 1))
done
[ "$n" -ge 55 ] || fail "200x60 shows $n table rows"
# help, pause
tm send-keys -t live '?'
wait_for live 'moetrace top: keys'
tm send-keys -t live x
tm send-keys -t live ' '
wait_for live '\[PAUSED\]'
tm send-keys -t live q
terminal_restored live
[ "$(cat "$T/live.status")" = 0 ] || fail "q exited $(cat "$T/live.status")"

# ---- TERM=vt100: ASCII only; SIGTERM restores the terminal --------------------
start mono 24 80 LANG=C.UTF-8 TERM=vt100 -- --delay-ms 100 "$T/live.db"
wait_for mono '^ Layer 0 device load'
wait_for mono 'r0-7 +[=#|]'
screen_ok mono 24 80 '^'
LC_ALL=C grep -q "$(printf '[\200-\377]')" "$T/screen" && fail "non-ASCII glyphs under TERM=vt100"
kill -TERM "$(top_pid mono)"
terminal_restored mono
[ "$(cat "$T/mono.status")" = 143 ] || fail "SIGTERM exit status $(cat "$T/mono.status")"

# ---- NO_COLOR in a colour terminal: no colour; --iterations ends it ------------
start nocolor 24 80 LANG=C.UTF-8 TERM=xterm-256color NO_COLOR=1 -- --delay-ms 100 \
	--iterations 60 "$T/live.db"
wait_for nocolor '^ Layer 0 device load'
tm capture-pane -e -p -t nocolor >"$T/escaped"
grep -Eq "$(printf '\033')\\[([0-9;]*;)?[34][0-7]m" "$T/escaped" && fail "colour under NO_COLOR"
grep -Eq "$(printf '\033')\\[([0-9;]*;)?7(;[0-9;]*)?m" "$T/escaped" || fail "no reverse video for the status line"
terminal_restored nocolor
[ "$(cat "$T/nocolor.status")" = 0 ] || fail "--iterations exited $(cat "$T/nocolor.status")"

# ---- a locked database: "waiting", and the keys still work -------------------
sqlite3 "$T/live.db" "VACUUM INTO '$T/j.db'" || fail "cannot copy the trace"
sqlite3 "$T/j.db" 'PRAGMA journal_mode=DELETE' >/dev/null || fail "journal mode"
start lock 30 100 LANG=C.UTF-8 TERM=xterm -- --delay-ms 100 "$T/j.db"
wait_for lock '^step 119 \[idle\]'
# the lock is held until the test has seen what it wants (at most 120 s)
python3 - "$T/j.db" "$T/locked" "$T/unlock" <<'PY' &
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
end = time.monotonic() + 120
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.05)
c.execute("COMMIT")
PY
locker=$!
i=0; while [ ! -f "$T/locked" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -f "$T/locked" ] || fail "the locker did not take its lock"
wait_for lock '\[waiting\]'
tm send-keys -t lock j
wait_for lock '^ Layer 1 device load'
wait_for lock '\[waiting\]' # still waiting while locked
: >"$T/unlock"
wait "$locker"
wait_for lock '^step 119 \[idle\]'
tm send-keys -t lock C-c
terminal_restored lock
[ "$(cat "$T/lock.status")" = 130 ] || fail "Ctrl-C exit status $(cat "$T/lock.status")"
exit 0
