# balance: a range whose steps are all of the other phase than --phase says
# so, as place does ("in the chosen range and phase").
. "$(dirname "$0")/lib.sh"

db=$T/t.db
expect_status 0 mt gen --model mixtral-8x7b --steps 40 "$db"
n=$(mt sql --format csv "$db" "select count(*) from steps where step between 1 and 4 and phase = 2" | tail -n 1)
[ "$n" = 4 ] || fail "steps 1-4 are not all decode steps ($n): the test needs another trace"

expect_status 2 mt balance --phase prefill --steps 1:4 "$db"
expect_grep "$T/err" "^moetrace balance: no steps of run '[^']+' in the chosen range and phase$"
expect_status 2 mt place --phase prefill --steps 1:4 "$db"
expect_grep "$T/err" "in the chosen range and phase$"
# without --phase the range alone is named
expect_status 2 mt balance --steps 1000:2000 "$db"
expect_grep "$T/err" "^moetrace balance: no steps of run '[^']+' in the chosen range$"
expect_status 0 mt balance --phase decode --steps 1:4 "$db"
exit 0
