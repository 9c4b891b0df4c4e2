#!/bin/sh
# moetrace record: steps through the recorder into a trace `info` reads,
# the rate is honoured, bad arguments exit 2 naming the problem.
. "$(dirname "$0")/lib.sh"
db="$T/r.db"
expect_status 0 mt record --model mixtral-8x7b --steps 40 --seed 3 --run r1 --block "$db"
expect_grep "$T/out" "^run 'r1' in .*: 40 steps of 32 x 8 in"
expect_grep "$T/out" "recorded 40, dropped 0, failed 0; queue high-water [0-9]+ of 256 steps"
expect_grep "$T/out" "[0-9.]+ (B|kB|MB) of expert counts written; memory bound [0-9.]+ (kB|MB)"
# the bytes reported are the encoded counts the run stored (steps.bytes),
# not the file's growth (which is 0 when a short run fits pages already there)
python3 - "$T/out" "$db" <<'PY' || fail "record's bytes written differ from the run's stored counts"
import re, sqlite3, sys
m = re.search(r"([0-9.]+) (B|kB|MB) of expert counts written", open(sys.argv[1]).read())
got = float(m.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6}[m.group(2)]
want = sqlite3.connect(sys.argv[2]).execute(
    "SELECT sum(s.bytes) FROM steps s JOIN runs r ON r.run = s.run WHERE r.name = 'r1'").fetchone()[0]
unit = {"B": 1, "kB": 1e3, "MB": 1e6}[m.group(2)]
assert want > 0 and abs(got - want) <= 0.051 * unit, (got, want)
PY
expect_status 0 mt info "$db"
expect_grep "$T/out" "steps +40 \(0 \.\. 39\)"
[ "$(sqlite3 "$db" 'SELECT count(*) FROM counts')" = 1280 ] || fail "expected 40 x 32 counts rows"
# every step holds top-k tokens per layer: sum over a layer = tokens x top-k (2)
bad=$(sqlite3 "$db" "SELECT count(*) FROM steps WHERE tokens <= 0")
[ "$bad" = 0 ] || fail "$bad steps without tokens"

# the same seed gives the same steps (the generator is deterministic)
expect_status 0 mt record --model mixtral-8x7b --steps 40 --seed 3 --run r2 --block "$db"
a=$(sqlite3 "$db" "SELECT group_concat(hex(data)) FROM counts WHERE run = 1 ORDER BY step, layer")
b=$(sqlite3 "$db" "SELECT group_concat(hex(data)) FROM counts WHERE run = 2 ORDER BY step, layer")
[ "$a" = "$b" ] || fail "same seed, different counts"

# --rate paces the steps: 20 steps at 100 Hz take at least 0.19 s
expect_status 0 mt record --model mixtral-8x7b --steps 20 --rate 100 --run paced "$db"
secs=$(sed -n "s/.* in \([0-9.]*\) s (.*/\1/p" "$T/out")
awk -v s="$secs" 'BEGIN { exit !(s >= 0.19) }' || fail "20 steps at 100 Hz took $secs s"

# --append continues after the last step
expect_status 0 mt record --model mixtral-8x7b --steps 5 --run r1 --append "$db"
[ "$(sqlite3 "$db" "SELECT max(step) FROM steps WHERE run = 1")" = 44 ] || fail "append"

# errors: exit 2, a message naming the problem, nothing written
expect_status 2 mt record --model mixtral-8x7b --steps 5 --run r1 "$db"
expect_grep "$T/err" "^moetrace record: a run named 'r1' already exists"
expect_status 2 mt record --model nosuch --steps 5 "$T/x.db"
expect_grep "$T/err" "unknown model 'nosuch'"
expect_status 2 mt record --model mixtral-8x7b --steps -1 "$T/x.db"
expect_grep "$T/err" "steps"
expect_status 2 mt record --model mixtral-8x7b --rate fast "$T/x.db"
expect_grep "$T/err" "rate"
expect_status 2 mt record --steps 5 "$T/x.db"
expect_grep "$T/err" "--model is required"
expect_status 2 mt record --model mixtral-8x7b --ring 4 --batch 8 "$T/x.db"
expect_grep "$T/err" "batch 8"
[ ! -e "$T/x.db" ] || fail "a failed record left $T/x.db"
expect_status 1 mt record --model mixtral-8x7b --steps 5 "$T/no/such/dir/x.db"
expect_grep "$T/err" "^moetrace record: cannot create '$T/no/such/dir/x.db'"
printf 'not a database, just text\n' >"$T/text.db"
expect_status 2 mt record --model mixtral-8x7b --steps 5 "$T/text.db"
expect_grep "$T/err" "text.db"

# --steps 0 records until SIGINT, then flushes and reports
"$MOETRACE" record --model mixtral-8x7b --steps 0 --rate 50 --block --run forever "$db" >"$T/bg.out" 2>&1 &
pid=$!
# SIGINT once a few batches are in the file (not after a fixed time: a busy
# machine may take that long to start the recorder)
forever_steps() {
	n=$(sqlite3 "$db" "SELECT count(*) FROM steps s JOIN runs r ON r.run = s.run
		WHERE r.name = 'forever'" 2>/dev/null) && [ "${n:-0}" -gt 5 ]
}
wait_until 120 forever_steps || { kill $pid; cat "$T/bg.out"; fail "record --steps 0 wrote no steps"; }
kill -INT $pid
wait $pid || { cat "$T/bg.out"; fail "record --steps 0 did not exit 0 on SIGINT"; }
expect_grep "$T/bg.out" "interrupted"
n=$(sqlite3 "$db" "SELECT count(*) FROM steps s JOIN runs r ON r.run = s.run WHERE r.name = 'forever'")
[ "$n" -gt 5 ] || fail "only $n steps recorded before SIGINT"
grep -q "recorded $n, dropped 0" "$T/bg.out" || { cat "$T/bg.out"; fail "stats do not match the $n stored steps"; }

# --placement records the engine-default placement (experts in slot order,
# then copies of 0, 1, ...: mixtral-8x7b has 4 x 3 slots for 8 experts)
expect_status 0 mt record --model mixtral-8x7b --steps 3 --placement --run placed "$db"
p=$(sqlite3 "$db" "SELECT hex(phy2log) FROM deployed d JOIN runs r ON r.run = d.run
	WHERE r.name = 'placed' AND layer = 0")
want=$(for e in 0 1 2 3 4 5 6 7 0 1 2 3; do printf '%02X000000' $e; done)
[ "$p" = "$want" ] || fail "placement $p, expected $want"
