# Golden files, as jq's tests do: sourced by tests/cli/NNNN-golden-*.sh.
# `golden NAME [-x COLUMN] [-v REGEX] ARGS...` runs `moetrace ARGS...`,
# which must exit 0, and compares its standard output with
# tests/golden/NAME.out byte for byte.  The test's temporary directory is
# written as $T and the shared data as $MOETRACE_SHARED, so that paths do
# not differ; -x leaves out a CSV column, -v the lines matching an extended
# regex (run times).  On a difference it shows the diff; `golden_done`
# fails if any differed.  After an intended change of output:
#   make golden          (or MOETRACE_GOLDEN_UPDATE=1 sh tests/run.sh cli golden)
#   git diff tests/golden       review, then commit the new files
# Only deterministic output belongs here: fixed seeds and files, no timings.
. "$(dirname "$0")/lib.sh"
GOLDEN_DIR=$MOETRACE_TOP/tests/golden
golden_bad=0 golden_seen=""

golden() {
	g_name=$1 g_drop="" g_omit=""
	shift
	while :; do
		case $1 in
		-x) g_drop=$2 ;; # -x COLUMN: leave out a CSV column (a timing)
		-v) g_omit=$2 ;; # -v REGEX: leave out the lines matching REGEX
		*) break ;;
		esac
		shift 2
	done
	golden_seen="$golden_seen $g_name.out"
	mt "$@" >"$T/golden.raw" 2>"$T/golden.err"
	g_rc=$?
	[ $g_rc -eq 0 ] || { cat "$T/golden.err" >&2; fail "$g_name: 'moetrace $*' exited $g_rc"; }
	# the temporary directory's and the shared data's paths as $T and
	# $MOETRACE_SHARED (sed on literal strings)
	g_t=$(printf '%s\n' "$T" | sed 's/[][\.*^$/]/\\&/g')
	g_s=$(printf '%s\n' "$MOETRACE_SHARED" | sed 's/[][\.*^$/]/\\&/g')
	sed -e "s/$g_t/\$T/g" -e "s/$g_s/\$MOETRACE_SHARED/g" "$T/golden.raw" |
		if [ -n "$g_omit" ]; then grep -Ev -- "$g_omit"; else cat; fi >"$T/golden.sed"
	if [ -n "$g_drop" ]; then
		awk -F, -v OFS=, -v c="$g_drop" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i
			if (!k) { print "no column " c > "/dev/stderr"; exit 1 } }
			{ out = sep = ""; for (i = 1; i <= NF; i++) if (i != k) { out = out sep $i; sep = OFS }
			  print out }' "$T/golden.sed" >"$T/golden.out" || fail "$g_name: no CSV column $g_drop"
	else
		mv "$T/golden.sed" "$T/golden.out"
	fi
	if [ "${MOETRACE_GOLDEN_UPDATE:-0}" = 1 ]; then
		cp "$T/golden.out" "$GOLDEN_DIR/$g_name.out"
		echo "wrote tests/golden/$g_name.out"
	elif [ ! -f "$GOLDEN_DIR/$g_name.out" ]; then
		echo "FAIL: no tests/golden/$g_name.out: make golden writes it" >&2
		golden_bad=$((golden_bad + 1))
	elif ! diff -u "$GOLDEN_DIR/$g_name.out" "$T/golden.out" >"$T/golden.diff"; then
		echo "FAIL: $g_name: 'moetrace $*' differs from tests/golden/$g_name.out:" >&2
		sed 's/^/  /' "$T/golden.diff" >&2
		golden_bad=$((golden_bad + 1))
	fi
}

# golden_done PREFIX: every tests/golden/PREFIX*.out was compared (none is
# left over from a case that is gone), and none differed
golden_done() {
	for f in "$GOLDEN_DIR/$1"*.out; do
		[ -f "$f" ] || continue
		case " $golden_seen " in *" $(basename "$f") "*) ;; *)
			if [ "${MOETRACE_GOLDEN_UPDATE:-0}" = 1 ]; then
				rm -f "$f"
				echo "removed tests/golden/$(basename "$f") (no case)"
			else
				echo "FAIL: tests/golden/$(basename "$f") has no case: make golden removes it" >&2
				golden_bad=$((golden_bad + 1))
			fi ;;
		esac
	done
	[ $golden_bad -eq 0 ] || fail "$golden_bad golden outputs differ; if the change is intended: make golden, then review git diff tests/golden"
	exit 0
}
