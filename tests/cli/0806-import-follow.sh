# moetrace import --follow DIR: a follower tails a directory while dumps
# land in it as SGLang's recorder writes them (torch.save straight to the
# name), and `top --snapshot` reads the run meanwhile.  The two rank files
# of a per_pass dump go in together (summed); a half-written dump waits
# until it is complete; a bad one is reported and skipped; SIGTERM stops
# the follower cleanly; a restarted follower takes no dump twice.
. "$(dirname "$0")/lib.sh"
have_torch || skip "python3-torch writes the dumps"
W="/usr/bin/python3 $MOETRACE_TOP/tests/data/make_sglang_dumps.py"
mkdir -p "$T/dir" "$T/stage"
pid=

start() { # N [SETTLE]: returns once the follower is up (its signal handlers set)
	"$MOETRACE" import --follow "$T/dir" --into "$T/db" --run live --interval 0.1 --settle "${2:-0.5}" \
		>"$T/fout.$1" 2>"$T/ferr.$1" &
	pid=$!
	wait_until 120 grep -q "^following " "$T/fout.$1" || { cat "$T/ferr.$1" >&2; fail "follower $1 did not start"; }
}
stop() { # SIG STATUS
	kill -"$1" "$pid"
	wait "$pid"
	got=$?
	pid=
	[ "$got" = "$2" ] || { cat "$T"/ferr.* >&2; fail "the follower exited $got after SIG$1, expected $2"; }
}
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"' EXIT
# snap: last_step and steps of the run as top sees it ("-" before the run exists)
snap() {
	"$MOETRACE" top --snapshot "$T/db" --run live 2>/dev/null |
		python3 -c "import json,sys; h=json.load(sys.stdin)['header']; print(h['last_step'], h['steps'])" 2>/dev/null ||
		echo -
}
# wait_for "LAST STEPS": polls top until it shows that (at most ~60 s)
wait_for() {
	i=0
	while [ "$(snap)" != "$1" ]; do
		i=$((i + 1))
		[ $i -lt 300 ] || { cat "$T"/fout.* "$T"/ferr.* >&2; fail "top never showed '$1' (last: $(snap))"; }
		sleep 0.2
	done
}

start 1
# one dump call of 2 ranks: forward passes 0..2, each rank the full counts
$W ranks "$T/dir" 1765000000.5 0 3 2 || fail "writing the dump"
wait_for "2 3"
# the ranks were summed: pass 0 is twice HEAT[0]
[ "$(sqlite3 "$T/db" "SELECT 1")" = 1 ] || fail "sqlite3"
got=$("$MOETRACE" sql --format csv "$T/db" "SELECT group_concat(tokens) FROM (SELECT tokens FROM expert_heat
	WHERE step = 0 ORDER BY layer, expert)" | tail -n 1)
[ "$got" = '"6,0,2,8,4,4,4,4"' ] || fail "pass 0 is not the sum of both ranks: $got"

# a dump cut short: not taken while incomplete (refused after 5 x settle
# without an end record), taken once complete
$W pass "$T/stage" x.pt 3 2 0
n=$(wc -c <"$T/stage/x.pt")
head -c $((n / 2)) "$T/stage/x.pt" >"$T/dir/expert_distribution_recorder_1765000100.25_0.pt"
# a text file named like a dump: refused, reported, the follower goes on
echo "not a dump" >"$T/dir/expert_distribution_recorder_1765000050.5_0.pt"
i=0
until grep -q "1765000050.5_0.pt: not a torch.save archive" "$T/ferr.1"; do
	i=$((i + 1)); [ $i -lt 300 ] || fail "the bad dump was not reported"; sleep 0.2
done
[ "$(snap)" = "2 3" ] || fail "a half-written dump was imported: $(snap)"
tail -c +$((n / 2 + 1)) "$T/stage/x.pt" >>"$T/dir/expert_distribution_recorder_1765000100.25_0.pt"
wait_for "4 5"
stop TERM 2
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM imports")" = 3 ] || fail "3 dump files taken"
expect_grep "$T/fout.1" "imported '.*1765000100.25_0.pt' into run 'live': steps 3 to 4"

# restarted: what is there was taken already; a new dump call's two rank
# files landing with a bad file go in together, the bad one refused alone
rm -f "$T/dir/expert_distribution_recorder_1765000050.5_0.pt"
start 2 1
sleep 1.5
[ "$(snap)" = "4 5" ] || fail "a restarted follower imported again: $(snap)"
echo "junk" >"$T/dir/expert_distribution_recorder_1765000190.5_3.pt"
$W ranks "$T/dir" 1765000200.75 5 1 2
wait_for "5 6"
stop INT 2
[ "$(grep -c "^imported" "$T/fout.2")" = 2 ] || fail "the restarted follower took other than the two rank files"
expect_grep "$T/ferr.2" "1765000190.5_3.pt: not a torch.save archive"
got=$("$MOETRACE" sql --format csv "$T/db" "SELECT sum(tokens) FROM expert_heat WHERE step = 5" | tail -n 1)
[ "$got" = 32 ] || fail "pass 5 is not the sum of both ranks: $got"
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM imports")" = 5 ] || fail "5 dump files taken"
sqlite3 "$T/db" "PRAGMA integrity_check" | grep -qx ok || fail "integrity"

# nothing to refuse: a clean stop exits 0
rm -f "$T/dir/expert_distribution_recorder_1765000190.5_3.pt"
start 3
sleep 0.5
stop TERM 0
exit 0
