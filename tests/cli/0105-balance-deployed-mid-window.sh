# balance scores every step of its window under the placement in force at
# the window's end (docs/cli.md); when that placement was deployed after
# the window's first step, the output says so and from which step, rather
# than presenting the earlier steps as run under it.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 5 -q "$T/db"
hex=""
for r in 0 1 2 3; do
	for e in $((2 * r)) $((2 * r + 1)) $(((2 * r + 4) % 8)); do
		hex="$hex$(printf '%02x000000' "$e")"
	done
done
sqlq=""
for l in $(seq 0 31); do
	sqlq="$sqlq INSERT INTO deployed VALUES (1, 20, $l, 4, 3, X'$hex');"
done
expect_status 0 mt sql --write "$T/db" "$sqlq"

expect_status 0 mt balance "$T/db"
expect_grep "$T/out" "deployed placement\$"
expect_grep "$T/out" "^the deployed placement took effect at step 20, after the window's first step 0: the 20 steps before it are scored under it too"
# only the steps it served: no note
expect_status 0 mt balance "$T/db" --steps 20:39
expect_nogrep "$T/out" "took effect"
# before it: the static layout, no note
expect_status 0 mt balance "$T/db" --steps 0:19
expect_grep "$T/out" "static contiguous placement\$"
expect_nogrep "$T/out" "took effect"
exit 0
