#!/bin/sh
# LeakSanitizer still tells a kept block from a lost one in make check's
# sanitizer-built programs, which scan every module's globals but libasan's
# (tests/lsan_roots.c): a block only a global of the program holds, or only
# a global of a library loaded with dlopen() after the program started,
# or that a destructor stores in a global as the program exits, is not
# reported; a block nothing holds is, as a leak of its size, also one whose
# global a destructor clears (the globals are read after the destructors).
. "$(dirname "$0")/lib.sh"
B=$(dirname "$MOETRACE")
P=$B/tests/lsan_probe
# make check builds it beside the sanitizer-built moetrace; a release build
# (make check-fast) has neither the probe nor LeakSanitizer
[ -x "$P" ] || skip "no sanitizer build beside $MOETRACE (make check-build)"
case ":${ASAN_OPTIONS:-}:" in *:detect_leaks=1:*) ;; *) skip "leak detection is off (ASAN_OPTIONS)" ;; esac
mkdir "$T/san"
# probe ARGS...: runs the probe with its sanitizer reports in $T/san
probe() { ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$T/san/report" "$P" "$@" >"$T/out" 2>"$T/err"; }
reports() { ls "$T/san" | wc -l; }

probe keep || fail "keep exited $?: $(cat "$T/err")"
[ "$(reports)" = 0 ] || { cat "$T"/san/*; fail "a block held by a global was reported"; }
probe dl "$B/tests/lsan_probe_dl.so" || fail "dl exited $?: $(cat "$T/err")"
[ "$(reports)" = 0 ] || { cat "$T"/san/*; fail "a block held by a dlopen()ed library's global was reported"; }
probe leak && fail "a leak exited 0"
[ "$(reports)" = 1 ] || fail "a leak left $(reports) reports, not one"
expect_grep "$T"/san/report.* '^Direct leak of 64 byte\(s\) in 1 object\(s\)'
expect_grep "$T"/san/report.* 'in main .*lsan_probe\.c'
rm -f "$T"/san/*
probe dtor-keep || fail "dtor-keep exited $?: $(cat "$T/err")"
[ "$(reports)" = 0 ] || { cat "$T"/san/*; fail "a block a destructor stored in a global was reported"; }
probe dtor-lose && fail "dtor-lose exited 0"
[ "$(reports)" = 1 ] || fail "a block whose global a destructor cleared left $(reports) reports, not one"
expect_grep "$T"/san/report.* '^Direct leak of 64 byte\(s\) in 1 object\(s\)'
exit 0
