#!/bin/sh
# Static analysis of the C sources (make lint): clang-tidy with the checks
# of .clang-tidy, and cppcheck (warning, performance and portability).
# A finding whose file and check are listed in scripts/lint-known.txt is an
# open issue already reported: it is counted as known, not failed.  Any
# other finding fails.  A tool that is not installed is skipped, said so.
# Usage: sh scripts/lint.sh [FILE.c...]   (LINT_JOBS parallel clang-tidy, 2;
# LINT_KNOWN=1 also prints the known findings, prefixed "known: ";
# LINT_REQUIRE=1, as CI sets it, fails with exit 3 when a tool is not
# installed; new findings exit 1)
set -u
cd "$(dirname "$0")/.." || exit 2
top=$(pwd)
files="$*"
[ -n "$files" ] || files=$(ls ./*.c util/*.c store/*.c collector/*.c analyze/*.c render/*.c \
	tui/*.c fleet/*.c sqlext/*.c tests/*.c tests/unit/*.c tests/fuzz/*.c tests/bench/*.c 2>/dev/null | sed 's#^\./##')
cflags="-std=c11 -I. -D_GNU_SOURCE -DMOETRACE_VERSION=\"lint\" $(pkg-config --cflags sqlite3 json-c cairo ncursesw 2>/dev/null)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/moetrace-lint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/findings"
ran="" missing=""

if command -v clang-tidy >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	printf '%s\n' $files | xargs -P "${LINT_JOBS:-2}" -I{} clang-tidy -quiet {} -- $cflags \
		>"$tmp/tidy" 2>/dev/null
	grep -E ': (warning|error): .*\[[^]]+\]$' "$tmp/tidy" | sed "s#^$top/##" >>"$tmp/findings"
	ran="$ran clang-tidy"
else
	echo "lint: clang-tidy is not installed: skipped"
	missing="$missing clang-tidy"
fi
if command -v cppcheck >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	cppcheck -q --std=c11 --enable=warning,performance,portability --inline-suppr \
		-I. -D_GNU_SOURCE -DMOETRACE_VERSION='"lint"' --suppress=missingIncludeSystem \
		--template='{file}:{line}:{column}: {severity}: {message} [cppcheck-{id}]' \
		$files 2>>"$tmp/findings" >/dev/null
	ran="$ran cppcheck"
else
	echo "lint: cppcheck is not installed: skipped"
	missing="$missing cppcheck"
fi

new=0 known=0
sort -u "$tmp/findings" >"$tmp/sorted"
while IFS= read -r line; do
	path=${line%%:*}
	checks=$(echo "$line" | sed 's/.*\[\([^]]*\)\]$/\1/' | tr ',' ' ')
	hit=0
	for c in $checks; do
		grep -Eq "^$path[[:space:]]+$c([[:space:]]|$)" scripts/lint-known.txt && hit=1
	done
	if [ $hit = 1 ]; then
		known=$((known + 1))
		[ "${LINT_KNOWN:-0}" = 1 ] && echo "known: $line"
	else
		new=$((new + 1))
		echo "$line"
	fi
done <"$tmp/sorted"
echo "lint:${ran:- nothing run}: $new new findings, $known known (scripts/lint-known.txt)"
if [ "${LINT_REQUIRE:-0}" = 1 ] && [ -n "$missing" ]; then
	echo "lint: LINT_REQUIRE=1 and not installed:$missing (make deps-test)"
	exit 3
fi
[ $new -eq 0 ]
