# moetrace gen: bad arguments exit 2 with a message naming what is wrong,
# and leave the database as it was (no file when there was none).
. "$(dirname "$0")/lib.sh"

bad() { # expected-message-regex args...
	msg=$1; shift
	expect_status 2 mt gen "$@"
	expect_grep "$T/err" "$msg"
}
bad "unknown model 'nosuch'"                   --model nosuch "$T/x.db"
bad "--steps: 0 is out of range"               --steps 0 "$T/x.db"
bad "--steps: 'many'"                          --steps many "$T/x.db"
bad "--seed"                                   --seed -1 "$T/x.db"
bad "--prefill-fraction: 1.5 is out of range"  --prefill-fraction 1.5 "$T/x.db"
bad "--decode-batch"                           --decode-batch 0 "$T/x.db"
bad "--prefill-tokens"                         --prefill-tokens -5 "$T/x.db"
bad "--domains"                                --domains 100 "$T/x.db"
bad "--skew"                                   --skew 0 "$T/x.db"
bad "--drift"                                  --drift nan "$T/x.db"
bad "needs at least its 256 experts"           --ranks 8 --slots 8 "$T/x.db"
bad "--ranks-per-node 16 is more than --ranks 8" --model deepseek-v2-lite --ranks 8 --ranks-per-node 16 "$T/x.db"
bad "usage: moetrace gen"                      --steps 5
bad "usage: moetrace gen"                      "$T/x.db" "$T/y.db"
[ ! -e "$T/x.db" ] || fail "a refused gen created $T/x.db"

# a run name that exists already: refused, the database unchanged
expect_status 0 mt gen --model mixtral-8x7b --steps 20 --run r -q "$T/db"
before=$(sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM counts; SELECT count(*) FROM steps")
expect_status 2 mt gen --model mixtral-8x7b --steps 20 --run r "$T/db"
expect_grep "$T/err" "a run named 'r' already exists"
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM counts; SELECT count(*) FROM steps")" = "$before" ] ||
	fail "the database changed"
# a file that is not a database: error, file untouched
printf 'not a database, just text\n' >"$T/text.db"
cp "$T/text.db" "$T/text.before"
"$MOETRACE" gen --steps 2 "$T/text.db" >"$T/out" 2>"$T/err" && fail "gen wrote into a text file"
same_file "$T/text.db" "$T/text.before"
exit 0
