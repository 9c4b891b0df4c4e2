# record --sink to a server that cannot be reached retries after 100 ms,
# doubling up to 2 s (docs/fleet.md), not at every commit: a commit wakes
# the sink, and used to end its wait.  Attempts in T seconds of backoff
# are at most 5 + T/2 (0.1 + 0.2 + 0.4 + 0.8 + 1.6 s, then one per 2 s);
# before, one per batch committed (21 of 20 batches in 2.4 s).
. "$(dirname "$0")/lib.sh"
s=$(date +%s.%N)
expect_status 0 mt record --model mixtral-8x7b --steps 200 --rate 100 --run sk \
	--sink 'clickhouse://127.0.0.1:1/fleet?deployment=sk' --sink-wait 300 "$T/sk.db"
e=$(date +%s.%N)
expect_grep "$T/out" "^recorded 200, dropped 0, failed 0;"
expect_grep "$T/out" "^sink clickhouse://127.0.0.1:1/fleet\?deployment=sk: shipped 0, skipped 200, retries [0-9]+;"
n=$(sed -n 's/.* retries \([0-9]*\);.*/\1/p' "$T/out")
awk -v n="$n" -v s="$s" -v e="$e" 'BEGIN { exit !(n >= 2 && n <= 5 + (e - s) / 2) }' ||
	fail "$n attempts in $(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", e - s }') s"
