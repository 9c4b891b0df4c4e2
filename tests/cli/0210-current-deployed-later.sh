# place/compare --current deployed on a run whose placement was deployed
# after the fitting window: the error says none is in force at the window's
# end and when the first takes effect, not that the run records none; the
# holdout of a window that ends the run starts from the one deployed then.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 5 -q "$T/db"
deploy_mid_run "$T/db" 30

expect_status 2 mt place "$T/db" --steps 0:9 --current deployed
expect_grep "$T/err" "no deployed placement in force at step 9.*first takes effect at step 30"
expect_nogrep "$T/err" "records no deployed"
expect_status 2 mt compare "$T/db" --current deployed --algos static
expect_grep "$T/err" "no deployed placement in force at step 19.*first takes effect at step 30"
# from step 30 on it is in force
expect_status 0 mt place "$T/db" --steps 30:35 --current deployed
expect_grep "$T/out" "transfer from 'deployed'"
# a window that ends the run says what to expect from the same fit on the
# steps before it, from the placement deployed then: at step 31, in force;
# at step 29 nothing was deployed yet, so the fit is on the window's first
# half (30-34, deployed at its end); with none deployed at the end of
# either (20:39: steps 0-19 and 20-29) it says nothing and does not fail
expect_status 0 mt place "$T/db" --steps 32:39 --current deployed
expect_grep "$T/out" "^what to expect on steps not fitted on: fitted the same way on the 8 steps of 24-31 "
expect_status 0 mt place "$T/db" --steps 30:39 --current deployed
expect_grep "$T/out" "^what to expect on steps not fitted on: fitted the same way on the 5 steps of 30-34 \\(the window's first half: the window's length of steps before it have no deployed placement\\)"
expect_status 0 mt place "$T/db" --steps 20:39 --current deployed
expect_grep "$T/out" "^no steps after the fitting window to score on"
expect_nogrep "$T/out" "^what to expect"
exit 0
