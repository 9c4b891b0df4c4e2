# moetrace sql --examples: every printed query runs on a trace.
. "$(dirname "$0")/lib.sh"

mt import --help >/dev/null 2>&1 || skip "moetrace import is not built"
awk 'BEGIN { print "step,layer,expert,tokens";
	for (s = 0; s < 40; s++) for (l = 0; l < 2; l++) for (e = 0; e < 8; e++)
		print s "," l "," e "," (s * (e + 1) + l * 3) % 23 }' >"$T/t.csv"
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run t --ranks 4 --slots 2
expect_status 0 mt sql --examples
cp "$T/out" "$T/examples"
n=$(grep -c '^-- ' "$T/examples")
[ "$n" -ge 5 ] || fail "only $n examples"
expect_status 0 mt sql "$T/db" --examples
same_file "$T/examples" "$T/out"
# each example is "-- title" then one statement; run them one by one
i=0
while IFS= read -r line; do
	case "$line" in
	"-- "*) title=$line ;;
	"") ;;
	*)
		i=$((i + 1))
		mt sql "$T/db" "$line" >"$T/ex$i.out" 2>"$T/ex$i.err" ||
			fail "example $i ($title) failed: $(cat "$T/ex$i.err")"
		;;
	esac
done <"$T/examples"
[ "$i" -eq "$n" ] || fail "ran $i of $n examples"
# the hottest-experts example (the first) leads each layer with awk's maximum
awk -F, 'NR > 1 { s[$2 "," $3] += $4 } END { for (k in s) { split(k, a, ",");
	if (s[k] > m[a[1]]) m[a[1]] = s[k] } for (l in m) print l "," m[l] }' "$T/t.csv" |
	sort -n >"$T/want"
mt sql --format csv "$T/db" "$(sed -n 2p "$T/examples")" |
	awk -F, 'NR > 1 && !seen[$2]++ { print $2 "," $4 }' >"$T/got"
same_file "$T/want" "$T/got"
