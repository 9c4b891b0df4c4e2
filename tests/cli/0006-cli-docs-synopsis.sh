#!/bin/sh
# docs/cli.md shows, for every command, a synopsis with every option the
# command's own usage (`moetrace CMD --help`: its usage line and the indented
# lines under it) lists, so a user reading the reference sees each option there.
. "$(dirname "$0")/lib.sh"
doc=$MOETRACE_TOP/docs/cli.md
[ -f "$doc" ] || fail "no docs/cli.md"
expect_status 0 mt help
cmds=$(awk '/^commands:/ { c = 1; next } c && NF == 0 { exit } c { print $1 }' "$T/out")
[ "$(echo "$cmds" | wc -w)" -ge 15 ] || fail "too few commands in 'moetrace help': $cmds"
n=0
for c in $cmds; do
	# the synopsis: the fenced lines of "## c" that start with "moetrace c" and go on
	awk -v c="$c" '
		/^## / { s = ($2 == c) }
		s && /^```/ { f = !f; next }
		s && f && $0 ~ "^moetrace " c "( |$)" { k = 1 }
		s && f && k && !/^ / && $0 !~ "^moetrace " c { k = 0 }
		s && f && k' "$doc" >"$T/syn"
	[ -s "$T/syn" ] || fail "docs/cli.md: no synopsis of moetrace $c under ## $c"
	expect_status 0 mt "$c" --help
	awk 'NR == 1 && /^usage: / { print; next } NR > 1 && /^ / { print; next } { exit }' \
		"$T/out" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u >"$T/opts"
	n=$((n + $(wc -l <"$T/opts")))
	while read -r o; do
		grep -q -- "$o\([^a-z0-9-]\|$\)" "$T/syn" ||
			fail "docs/cli.md: '$o' of 'moetrace $c --help' is not in the synopsis of '## $c'"
	done <"$T/opts"
done
[ "$n" -ge 100 ] || fail "only $n options seen in the usages"
