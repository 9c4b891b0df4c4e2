#!/bin/sh
# import --follow: when several dumps are ready together they go into the
# run in one transaction, but each file's row in `imports` and its
# "imported" line carry the steps of that file, not the whole group's:
# two per_pass dump calls of 2 ranks each (forward passes 0-1 and 2-3),
# then two stat dumps (buffer slots 0-1 each, steps 4-5 and 6-7) and one
# whose every slot is empty (no step of its own: last_step = first_step - 1).
. "$(dirname "$0")/lib.sh"
have_torch || skip "python3-torch writes the dumps"
W="/usr/bin/python3 $MOETRACE_TOP/tests/data/make_sglang_dumps.py"
D="$MOETRACE_TOP/tests/data/sglang/torch"
mkdir -p "$T/dir" "$T/stage" "$T/stat"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"' EXIT
rows() { sqlite3 "$1" "SELECT name || ' ' || first_step || ' ' || last_step FROM imports ORDER BY name"; }
taken() { [ "$(grep -c '^imported' "$T/fout")" = "$1" ]; }
# follow DIR DB: a follower of DIR into DB, up
follow() {
	"$MOETRACE" import --follow "$1" --into "$2" --run live --interval 0.1 --settle 1 \
		>"$T/fout" 2>"$T/ferr" &
	pid=$!
	wait_until 120 grep -q "^following " "$T/fout" || { cat "$T/ferr" >&2; fail "the follower did not start"; }
}
stop() {
	kill -TERM "$pid"
	wait "$pid"
	got=$?
	pid=
	[ "$got" = 0 ] || { cat "$T/ferr" >&2; fail "the follower exited $got"; }
}

# two per_pass dump calls, staged and moved in together
$W ranks "$T/stage" 1765000000.5 0 2 2 || fail "writing the dumps"
$W ranks "$T/stage" 1765000001.5 2 2 2 || fail "writing the dumps"
follow "$T/dir" "$T/db"
mv "$T"/stage/*.pt "$T/dir/"
wait_until 120 taken 4 || { cat "$T/fout" "$T/ferr" >&2; fail "4 files not taken"; }
stop
# in one transaction: taken within a poll (--interval 0.1) of each other
[ "$(sqlite3 "$T/db" "SELECT max(imported) - min(imported) < 0.09 FROM imports")" = 1 ] ||
	fail "the four files did not go in together"
[ "$(rows "$T/db")" = "expert_distribution_recorder_1765000000.5_0.pt 0 1
expert_distribution_recorder_1765000000.5_1.pt 0 1
expert_distribution_recorder_1765000001.5_0.pt 2 3
expert_distribution_recorder_1765000001.5_1.pt 2 3" ] || fail "imports rows: $(rows "$T/db")"
expect_grep "$T/fout" "imported '.*1765000000.5_1.pt' into run 'live': steps 0 to 1$"
expect_grep "$T/fout" "imported '.*1765000001.5_0.pt' into run 'live': steps 2 to 3$"

# stat dumps: slots 0 and 1 filled (slot 2 empty), and one all empty
cp "$D/stat.pt" "$T/stat/expert_distribution_recorder_1765000002.5.pt"
cp "$D/stat.pt" "$T/stat/expert_distribution_recorder_1765000003.5.pt"
/usr/bin/python3 - "$T/stat/expert_distribution_recorder_1765000004.5.pt" <<'PY' || fail "writing the empty dump"
import sys, torch
torch.save(dict(rank=0, logical_count=torch.zeros((3, 3, 4), dtype=torch.int32),
                average_utilization_rate_over_window=None), sys.argv[1])
PY
mkdir "$T/sdir"
follow "$T/sdir" "$T/sdb"
mv "$T"/stat/*.pt "$T/sdir/"
wait_until 120 taken 3 || { cat "$T/fout" "$T/ferr" >&2; fail "3 files not taken"; }
stop
[ "$(rows "$T/sdb")" = "expert_distribution_recorder_1765000002.5.pt 0 1
expert_distribution_recorder_1765000003.5.pt 2 3
expert_distribution_recorder_1765000004.5.pt 4 3" ] || fail "stat imports rows: $(rows "$T/sdb")"
expect_grep "$T/fout" "imported '.*1765000003.5.pt' into run 'live': steps 2 to 3$"
expect_grep "$T/fout" "imported '.*1765000004.5.pt' into run 'live': no steps of its own"
exit 0
