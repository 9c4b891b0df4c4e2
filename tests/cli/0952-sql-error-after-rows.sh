# sql: a statement that fails after some rows leaves no result that reads as
# whole in any format: table, markdown and csv print none of its rows, json
# leaves its array open.  The statements before it print in full.
. "$(dirname "$0")/lib.sh"

db=$T/t.db
expect_status 0 mt gen --steps 5 "$db"
q="with r(x) as (values(1),(2),(3),(4)) select x, case when x>2 then json('bad') end as y from r"

for f in table markdown csv json; do
	expect_status 2 mt sql --format "$f" "$db" "$q"
	expect_grep "$T/err" "malformed JSON"
	case $f in
	json)
		expect_grep "$T/out" '"x": 2'
		expect_nogrep "$T/out" '\]'
		python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/out" 2>/dev/null &&
			fail "a cut-off json result parses as a whole document"
		;;
	*)
		[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "--format $f printed rows of a failed statement"; }
		;;
	esac
done

# a statement before the failing one prints in full, then nothing of it
expect_status 2 mt sql --format csv "$db" "select 7 as a; $q"
printf 'a\n7\n' >"$T/want"
same_file "$T/out" "$T/want"
expect_status 2 mt sql --format json "$db" "select 7 as a; $q"
expect_grep "$T/out" '^\]$'
[ "$(grep -c '^\]$' "$T/out")" -eq 1 ] || fail "the failing statement's json array was closed"

# a statement that finishes prints as before
expect_status 0 mt sql --format csv "$db" "with r(x) as (values(1),(2)) select x from r"
printf 'x\n1\n2\n' >"$T/want"
same_file "$T/out" "$T/want"
expect_status 0 mt sql --format json "$db" "select 1 as a where 0"
printf '[]\n' >"$T/want"
same_file "$T/out" "$T/want"
exit 0
