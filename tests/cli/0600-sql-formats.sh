# moetrace sql: sums through expert_heat, layer_heat and heat_window equal
# the sums awk computes from the imported CSV; the four output formats.
. "$(dirname "$0")/lib.sh"

mt import --help >/dev/null 2>&1 || skip "moetrace import is not built"
# 12 steps x 3 layers x 6 experts, a deterministic pattern with zeros
awk 'BEGIN { print "step,layer,expert,tokens";
	for (s = 0; s < 12; s++) for (l = 0; l < 3; l++) for (e = 0; e < 6; e++)
		print s "," l "," e "," (s * 7 + l * 13 + e * e * 5) % 17 }' >"$T/t.csv"
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run t --ranks 3 --slots 2

# hottest (layer, expert) cells of steps 3..8, the issue's example query
awk -F, 'NR > 1 && $1 >= 3 && $1 <= 8 { s[$2 "," $3] += $4 }
	END { for (k in s) print k "," s[k] }' "$T/t.csv" |
	sort -t, -k3,3nr -k1,1n -k2,2n | head -n 5 >"$T/want"
expect_status 0 mt sql --format csv "$T/db" "SELECT layer, expert, sum(tokens) AS tokens
	FROM expert_heat WHERE step BETWEEN 3 AND 8 GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 5"
head -n 1 "$T/out" | grep -qx 'layer,expert,tokens' || fail "csv header: $(head -n 1 "$T/out")"
tail -n +2 "$T/out" >"$T/got"
cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got"; fail "expert_heat sums differ from awk's"; }

# whole-run sums per layer and expert: layer_heat and heat_window
awk -F, 'NR > 1 { s[$2 "," $3] += $4 } END { for (k in s) print k "," s[k] }' "$T/t.csv" |
	sort -t, -k1,1n -k2,2n >"$T/want"
expect_status 0 mt sql --format csv "$T/db" "SELECT layer, expert, tokens FROM layer_heat ORDER BY 1, 2"
tail -n +2 "$T/out" >"$T/got"
cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got"; fail "layer_heat differs from awk's sums"; }
awk -F, 'NR > 1 && $2 == 1 && $1 >= 2 && $1 <= 5 { s[$3] += $4 } END { for (e in s) print e "," s[e] }' \
	"$T/t.csv" | sort -t, -k1,1n >"$T/want"
expect_status 0 mt sql --format csv "$T/db" "SELECT expert, tokens FROM heat_window(1, 1, 2, 5)"
tail -n +2 "$T/out" >"$T/got"
cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got"; fail "heat_window differs from awk's sums"; }

# formats: step 0 layer 0 experts 0..2 are 0, 5, 3 (0, 5, 20 mod 17)
q="SELECT expert, tokens, 'a|b,\"c\"' AS note FROM expert_heat WHERE step = 0 AND layer = 0 AND expert < 3"
expect_status 0 mt sql "$T/db" "$q"
cat >"$T/want" <<'OUT'
expert  tokens  note
------  ------  -------
     0       0  a|b,"c"
     1       5  a|b,"c"
     2       3  a|b,"c"
OUT
sed 's/ *$//' "$T/want" >"$T/want2"; sed 's/ *$//' "$T/out" >"$T/got"
cmp -s "$T/want2" "$T/got" || { diff "$T/want2" "$T/got"; fail "table format"; }
expect_status 0 mt sql --format csv "$T/db" "$q"
cat >"$T/want" <<'OUT'
expert,tokens,note
0,0,"a|b,""c"""
1,5,"a|b,""c"""
2,3,"a|b,""c"""
OUT
same_file "$T/want" "$T/out"
expect_status 0 mt sql --format markdown "$T/db" "$q"
cat >"$T/want" <<'OUT'
| expert | tokens | note |
| ---: | ---: | --- |
| 0 | 0 | a\|b,"c" |
| 1 | 5 | a\|b,"c" |
| 2 | 3 | a\|b,"c" |
OUT
same_file "$T/want" "$T/out"
expect_status 0 mt sql --format json "$T/db" "$q; SELECT 0.5 AS half, NULL AS missing"
cat >"$T/want" <<'OUT'
[
 {"expert": 0, "tokens": 0, "note": "a|b,\"c\""},
 {"expert": 1, "tokens": 5, "note": "a|b,\"c\""},
 {"expert": 2, "tokens": 3, "note": "a|b,\"c\""}
]
[
 {"half": 0.5, "missing": null}
]
OUT
same_file "$T/want" "$T/out"
if command -v python3 >/dev/null; then
	mt sql --format json "$T/db" "SELECT * FROM layer_imbalance" |
		python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r) == 36 and all(x["imbalance"] >= 1 for x in r)' ||
		fail "json output does not parse"
fi
expect_status 2 mt sql --format yaml "$T/db" "SELECT 1"
expect_grep "$T/err" "yaml"
