#!/bin/sh
# Golden outputs on generated traces (fixed seeds): info, balance, place and
# compare print exactly tests/golden/gen-*.out, so that an unintended change
# of any number shows as a diff (tests/cli/golden.sh; make golden rewrites
# them after an intended change).  Run times are left out.
. "$(dirname "$0")/golden.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 200 --seed 11 -q "$T/mixtral.db"
expect_status 0 mt gen --model deepseek-v3 --steps 40 --seed 5 -q "$T/dsv3.db"

golden gen-mixtral-info info "$T/mixtral.db"
golden gen-mixtral-balance balance "$T/mixtral.db"
golden gen-mixtral-place -v '^algorithm time:' place "$T/mixtral.db"
golden gen-mixtral-compare -x seconds compare --format csv "$T/mixtral.db"
golden gen-mixtral-compare-layers -x seconds compare --format csv --per-layer --algos eplb,keel "$T/mixtral.db"
golden gen-dsv3-info info "$T/dsv3.db"
golden gen-dsv3-balance balance --phase decode "$T/dsv3.db"
golden gen-dsv3-compare -x seconds compare --format csv --algos eplb,eplb-hier,keel \
	--nodes 4 --groups 8 "$T/dsv3.db"
golden_done gen-
