#!/bin/sh
# No C function grows past 150 lines: scripts/funclen.sh passes (the ones
# listed in scripts/funclen-known.txt may not grow), and it does catch a
# long function when there is one.
. "$(dirname "$0")/lib.sh"
expect_status 0 sh "$MOETRACE_TOP/scripts/funclen.sh"
# the check itself: a tree with a 151-line function fails it
mkdir -p "$T/tree/scripts" "$T/tree/util"
cp "$MOETRACE_TOP/scripts/funclen.sh" "$T/tree/scripts/"
: >"$T/tree/scripts/funclen-known.txt"
{
	echo "int util_long(void)"
	echo "{"
	i=0; while [ $i -lt 151 ]; do echo "	(void)0;"; i=$((i + 1)); done
	echo "}"
} >"$T/tree/util/long.c"
expect_status 1 sh "$T/tree/scripts/funclen.sh"
expect_grep "$T/out" "util/long.c: util_long\(\) is 151 lines, over 150"
