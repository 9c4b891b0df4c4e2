#!/bin/sh
# Function length check: no C function body over MAX lines (150), counted
# from the line after its opening brace to its closing brace (Linux style:
# both braces in column 0).  Functions listed in scripts/funclen-known.txt
# with their length when the check began may stay over the limit until
# they are split, but never grow.  Prints each offender; exit 1 if any.
# Usage: sh scripts/funclen.sh [MAX]     (LIST=1 prints every function over MAX)
set -u
cd "$(dirname "$0")/.." || exit 2
max=${1:-150}
files=$(ls ./*.c util/*.c store/*.c collector/*.c analyze/*.c render/*.c tui/*.c fleet/*.c sqlext/*.c \
	2>/dev/null | sed 's#^\./##')
# shellcheck disable=SC2086
awk -v max="$max" '
	FNR == 1 { name = ""; start = 0 }
	/^[A-Za-z_].*\(/ && !/;[ \t]*$/ {
		s = $0; sub(/\(.*/, "", s); n = split(s, w, /[ \t*]+/); cand = w[n]
	}
	/^\{/ { if (cand != "") { name = cand; start = FNR } }
	/^\}/ && name != "" {
		len = FNR - start - 1
		if (len > max) printf "%s %s %d\n", FILENAME, name, len
		name = ""; cand = ""
	}
' $files >"${TMPDIR:-/tmp}/funclen.$$"
status=0
while read -r file fn len; do
	known=$(awk -v f="$file" -v n="$fn" '$1 == f && $2 == n { print $3 }' scripts/funclen-known.txt 2>/dev/null)
	if [ "${LIST:-0}" = 1 ]; then
		echo "$file $fn $len"
	elif [ -z "$known" ]; then
		echo "$file: $fn() is $len lines, over $max: split it"
		status=1
	elif [ "$len" -gt "$known" ]; then
		echo "$file: $fn() grew to $len lines (listed at $known, limit $max): split it"
		status=1
	fi
done <"${TMPDIR:-/tmp}/funclen.$$"
rm -f "${TMPDIR:-/tmp}/funclen.$$"
exit $status
