# import of a CSV larger than the importer's buffers: the mapped file must
# not stay resident (peak RSS grows by less than half the file over a
# 2-step import), every row arrives (sum computed by awk while writing).
. "$(dirname "$0")/lib.sh"
[ "${MOETRACE_VALGRIND:-0}" = 1 ] && skip "peak RSS under valgrind is valgrind's"
[ -x /usr/bin/time ] || skip "no /usr/bin/time to read peak RSS"
# the sanitizer's quarantine of freed blocks is not the importer's memory
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"

# 12,000 steps x 1 layer x 256 experts = 3,072,000 rows, about 45 MB
awk 'BEGIN { print "step,layer,expert,tokens"
	for (s = 0; s < 12000; s++)
		for (e = 0; e < 256; e++) { v = (s * 7 + e * 13) % 1000; t += v; print s ",0," e "," v }
	printf "%d\n", t > "'"$T/sum"'" }' >"$T/big.csv"
head -513 "$T/big.csv" >"$T/small.csv"
kb() { /usr/bin/time -f '%M' -o "$T/rss" "$MOETRACE" "$@" >"$T/out" 2>"$T/err" ||
	{ cat "$T/out" "$T/err" >&2; fail "'$*' failed"; }; cat "$T/rss"; }
small=$(kb import "$T/small.csv" --into "$T/small.db")
big=$(kb import "$T/big.csv" --into "$T/big.db" --progress)
file_kb=$(( $(wc -c <"$T/big.csv") / 1024 ))
[ $((big - small)) -lt $((file_kb / 2)) ] ||
	fail "peak RSS ${big} KB after a ${small} KB import of 2 steps: the ${file_kb} KB file stayed mapped"
expect_status 0 mt sql "$T/big.db" "SELECT count(*), sum(tokens) FROM expert_heat" --format csv
expect_grep "$T/out" "^3072000,$(cat "$T/sum")\$"
expect_status 0 mt info "$T/big.db"
expect_grep "$T/out" "steps +12000 \(0 \.\. 11999\)"
exit 0
