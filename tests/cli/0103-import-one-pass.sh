# moetrace import of a CSV whose shape the options fix (--model, or --layers
# and --experts) reads the file once: the rows it stores, and every error it
# reports (with file:line, the database left as it was), are those of the
# two-pass import (--progress, or no shape given), on files long enough for
# the fast row reader and on rows it hands to the careful one.
. "$(dirname "$0")/lib.sh"

# mixtral-8x7b is 32 layers x 8 experts; 3 steps of every cell
awk 'BEGIN { print "step,layer,expert,tokens"
	for (s = 0; s < 3; s++) for (l = 0; l < 32; l++) for (e = 0; e < 8; e++)
		print s "," l "," e "," (s * 7 + l * 3 + e * 11) % 50 }' >"$T/plain.csv"
# the same rows as a person may write them: CRLF, blanks, signs, leading zeros
awk -F, 'NR == 1 { printf "%s\r\n", $0; next }
	{ printf " %s, +%s ,0%s,%s\r\n", $1, $2, $3, $4 }' "$T/plain.csv" >"$T/loose.csv"

n=0
for f in plain loose; do
	for opt in "" "--progress"; do
		n=$((n + 1))
		expect_status 0 mt import "$T/$f.csv" --into "$T/db" --run "r$n" --model mixtral-8x7b $opt
		expect_status 0 mt export "$T/db" --run "r$n" --format csv -o "$T/r$n.csv"
	done
done
# and with the shape given by hand, and found in the data
expect_status 0 mt import "$T/plain.csv" --into "$T/db" --run r5 --layers 32 --experts 8
expect_status 0 mt export "$T/db" --run r5 --format csv -o "$T/r5.csv"
expect_status 0 mt import "$T/loose.csv" --into "$T/db" --run r6
expect_status 0 mt export "$T/db" --run r6 --format csv -o "$T/r6.csv"
for k in 2 3 4 5 6; do same_file "$T/r1.csv" "$T/r$k.csv"; done
# what was stored is what the file says
tail -n +2 "$T/plain.csv" | sort >"$T/want_rows"
tail -n +2 "$T/r1.csv" | cut -d, -f1-4 | sort >"$T/got_rows"
same_file "$T/want_rows" "$T/got_rows"

# more steps than one batch holds (deepseek-v3: 58 x 256 cells), a few rows each
awk 'BEGIN { print "step,layer,expert,tokens"
	for (s = 0; s < 40; s++) for (l = 0; l < 58; l += 19) print s "," l "," (s * 5) % 256 "," s + 1 }' \
	>"$T/sparse.csv"
expect_status 0 mt import "$T/sparse.csv" --into "$T/db" --run s1 --model deepseek-v3
expect_status 0 mt import "$T/sparse.csv" --into "$T/db" --run s2 --model deepseek-v3 --progress
expect_status 0 mt export "$T/db" --run s1 --format csv --sparse -o "$T/s1.csv"
expect_status 0 mt export "$T/db" --run s2 --format csv --sparse -o "$T/s2.csv"
same_file "$T/s1.csv" "$T/s2.csv"
# (a sparse export also writes each step's last cell, zero here)
[ "$(awk -F, 'NR > 1 && $4 != 0' "$T/s1.csv" | wc -l)" = "$(($(wc -l <"$T/sparse.csv") - 1))" ] || fail "sparse rows lost"

before=$(sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM counts")
# bad: name message-after-file-name awk-program (prints the CSV from plain.csv)
bad() {
	awk "$3" "$T/plain.csv" >"$T/$1.csv"
	for opt in "" "--progress"; do
		expect_status 2 mt import "$T/$1.csv" --into "$T/db" --run "$1" --model mixtral-8x7b $opt
		expect_grep "$T/err" "$1.csv$2"
		[ "$(sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM counts")" = "$before" ] ||
			fail "$1: the database changed"
	done
}
bad order ":600: field 'step': 0 comes after step 2" "NR == 600 { print \"0,0,0,1\"; next } { print }"
bad layer ":500: layer 32 is out of range for mixtral-8x7b" "NR == 500 { print \"1,32,0,1\"; next } { print }"
bad expert ":500: expert 8 is out of range for mixtral-8x7b" "NR == 500 { print \"1,3,8,1\"; next } { print }"
bad duplicate ":400: duplicate row for step 1, layer 0, expert 0" "NR == 400 { print \"1,0,0,1\"; next } { print }"
bad tokens ":700: field 'tokens': 4294967296 overflows" "NR == 700 { print \"2,0,0,4294967296\"; next } { print }"
bad digits ":300: field 'tokens': '1x' is not an integer" "NR == 300 { print \"1,0,0,1x\"; next } { print }"
bad long ":300: field 'step': '1234567890123456789012' overflows" "NR == 300 { print \"1234567890123456789012,0,0,1\"; next } { print }"

# every cell of a shape other than the preset's: the data is not of that model
awk 'BEGIN { print "step,layer,expert,tokens"
	for (s = 0; s < 20; s++) for (l = 0; l < 2; l++) for (e = 0; e < 8; e++) print s "," l "," e ",1" }' \
	>"$T/dense.csv"
expect_status 2 mt import "$T/dense.csv" --into "$T/db" --run dense --model mixtral-8x7b
expect_grep "$T/err" "every cell of 2 MoE layers x 8 experts .* not of mixtral-8x7b"
[ "$(sqlite3 "$T/db" "SELECT count(*) FROM runs; SELECT count(*) FROM counts")" = "$before" ] ||
	fail "dense: the database changed"
