#!/bin/sh
# libmoetrace.so exports the API of moetrace.h and nothing else: every
# function the header declares (moetrace_recorder_serve_metrics among them),
# no internal module symbol, no aborting allocator an engine could bind by
# mistake; and it does not depend on libmicrohttpd or libcurl, which the
# metrics endpoint and the ClickHouse sink load only when asked for.
. "$(dirname "$0")/lib.sh"
[ -n "${MOETRACE_LIB:-}" ] || fail "no libmoetrace.so in the build (MOETRACE_LIB unset)"
command -v nm >/dev/null || fail "nm (binutils) is needed"
nm -D --defined-only "$MOETRACE_LIB" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort >"$T/exported"
sed -n 's/^[a-z_0-9 *]*[ *]\(moetrace_[a-z_0-9]*\)(.*/\1/p' "$MOETRACE_TOP/collector/moetrace.h" | sort -u >"$T/declared"
[ -s "$T/declared" ] || fail "no function found in moetrace.h"
if ! cmp -s "$T/exported" "$T/declared"; then
	diff "$T/declared" "$T/exported" >&2
	fail "libmoetrace.so exports other than moetrace.h declares (< declared, > exported)"
fi
grep -qx moetrace_recorder_serve_metrics "$T/exported" || fail "moetrace_recorder_serve_metrics is not exported"
grep -qx moetrace_recorder_ship "$T/exported" || fail "moetrace_recorder_ship is not exported"
if command -v readelf >/dev/null; then
	readelf -d "$MOETRACE_LIB" | grep NEEDED >"$T/needed"
	expect_nogrep "$T/needed" 'microhttpd|ncurses|cairo|curl'
fi
