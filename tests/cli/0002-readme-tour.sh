#!/bin/sh
# The README's five-minute tour runs verbatim, in order, from a fresh
# directory: every command exits 0 (the shell stops at the first that does
# not), `top` draws its screen in a real terminal (tmux) and quits on q,
# the files the tour promises are written, and the live recorder it starts
# is stopped by the tour itself.  Only the build line (make)
# is left out: ./moetrace is the binary under test.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || fail "tmux is needed (make deps-test)"
readme=$MOETRACE_TOP/README.md
awk '/^## A five-minute tour/ { t = 1 } t && /^```sh/ { b = 1; next } b && /^```/ { exit } b' \
	"$readme" >"$T/block"
[ -s "$T/block" ] || fail "no sh block under 'A five-minute tour' in README.md"
grep -q '^make$' "$T/block" || fail "the tour no longer starts with make"
mkdir "$T/w"
ln -s "$MOETRACE" "$T/w/moetrace"
{
	echo 'set -e'
	grep -v '^make$' "$T/block"
	# the tour's background job ($!, the live recorder) must end by itself
	# (checked here: closing the tmux pane would stop it with SIGHUP anyway)
	echo 'end=$(($(date +%s) + 30))'
	echo 'while [ "$(date +%s)" -lt "$end" ] && ps -o stat= -p "$!" 2>/dev/null | grep -qv Z; do sleep 0.2; done'
	echo 'if ps -o stat= -p "$!" 2>/dev/null | grep -qv Z; then : >recorder-left; fi'
} >"$T/w/tour.sh"
tm() { tmux -S "$T/sock" -f /dev/null "$@"; }
cleanup() {
	tm kill-server 2>/dev/null
	for p in $(pgrep -f 'moetrace record --model deepseek-v3 --steps 0' 2>/dev/null); do
		[ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$T/w" ] && kill "$p"
	done
	rm -rf "$T"
}
trap cleanup EXIT
tm new-session -d -s tour -x 120 -y 40 \
	"cd '$T/w' && env LANG=C.UTF-8 TERM=xterm-256color sh -x tour.sh 2>tour.err; echo \$? >rc"
# top is the one command that waits for a key: quit it once it has drawn
i=0
until [ -e "$T/w/rc" ]; do
	if [ ! -e "$T/screen" ] && grep -q '^+ ./moetrace top live.db' "$T/w/tour.err" 2>/dev/null; then
		# once it has drawn (at most 120 s on a loaded machine), quit it
		drawn() { tm capture-pane -p -t tour >"$T/pane" 2>/dev/null && grep -q 'layers' "$T/pane"; }
		wait_until 120 drawn
		cp "$T/pane" "$T/screen"
		tm send-keys -t tour q
		sleep 1
	elif [ -e "$T/screen" ] && [ $((i % 10)) = 0 ]; then
		tm send-keys -t tour q # should top still be loading
	fi
	i=$((i + 1))
	[ $i -lt 3000 ] || { tail -n 20 "$T/w/tour.err"; fail "the tour did not finish in 10 minutes"; }
	sleep 0.2
done
rc=$(cat "$T/w/rc")
[ "$rc" = 0 ] || { tail -n 30 "$T/w/tour.err"; fail "the tour stopped (exit $rc) at: $(grep '^+' "$T/w/tour.err" | tail -n 1)"; }
for f in trace.db mine.db expert_load.csv map.json report/report.pdf report/heatmap.png live.db; do
	[ -s "$T/w/$f" ] || fail "the tour did not write $f"
done
grep -q '^+ ./moetrace top live.db' "$T/w/tour.err" || fail "top was not run"
[ ! -e "$T/w/recorder-left" ] || fail "the tour left its live recorder running"
grep -q 'layers' "$T/screen" || { cat "$T/screen"; fail "top drew no screen"; }
