#!/bin/sh
# An empty --run, an empty list and a name given twice in a list are
# refused (exit 2), not read as the default or as two equal rows.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model mixtral-8x7b --steps 24 --seed 3 -q "$T/db"
cp "$T/db" "$T/orig"
for c in balance place compare replay info; do
	expect_status 2 mt $c "$T/db" --run ''
	expect_grep "$T/err" "^moetrace $c: --run: empty name$"
done
expect_status 2 mt compare "$T/db" --algos eplb,eplb
expect_grep "$T/err" "^moetrace compare: --algos: 'eplb' is given twice$"
expect_status 2 mt report "$T/db" --algos keel,eplb,keel -o "$T/r.html"
expect_grep "$T/err" "^moetrace report: --algos: 'keel' is given twice$"
[ ! -e "$T/r.html" ] || fail "a refused report wrote its file"
expect_status 2 mt replay "$T/db" --grid algos=
expect_grep "$T/err" "^moetrace replay: --grid algos=: empty value$"
expect_status 2 mt replay "$T/db" --grid algos=eplb,eplb
expect_grep "$T/err" "^moetrace replay: --grid algos=eplb,eplb: 'eplb' is given twice$"
expect_status 2 mt replay "$T/db" --grid algos=eplb interval=4,,8
expect_grep "$T/err" "^moetrace replay: --grid interval=4,,8: empty value$"
same_file "$T/db" "$T/orig"

# what stays accepted
expect_status 0 mt compare "$T/db" --algos eplb,keel
expect_status 0 mt replay "$T/db" --no-store --grid algos=eplb,keel
exit 0
