# balance scores every step of its window under the placement in force at
# the window's end (docs/cli.md); when that placement was deployed after
# the window's first step, the output says so and from which step, rather
# than presenting the earlier steps as run under it.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 5 -q "$T/db"
deploy_mid_run "$T/db" 20

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
