# report: bad input exits 2 with a clear message and leaves no file or
# temporary directory behind.
. "$(dirname "$0")/lib.sh"

python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(20):
        for e in range(8):
            f.write("%d,0,%d,%d\n" % (s, e, 10 + (e * 7 + s) % 13))
PY
expect_status 0 mt import "$T/t.csv" --into "$T/db" --run r --ranks 4 --slots 2
printf 'step,layer,expert,tokens\n0,0,0,5\n0,0,1,3\n' >"$T/one.csv"
expect_status 0 mt import "$T/one.csv" --into "$T/db" --run one --ranks 2 --slots 1
mkdir "$T/w"

# bad DESC ARGS...: exit 2, stderr matches DESC's pattern, nothing new in $T/w
bad() {
	pat=$1; shift
	expect_status 2 mt report "$@"
	expect_grep "$T/err" "^moetrace report: .*$pat|$pat"
	[ -z "$(ls -A "$T/w")" ] || { ls -A "$T/w" >&2; fail "files left after '$*'"; }
}
bad "unknown run|no run" "$T/db" --run nope -o "$T/w/a"
bad "empty range" "$T/db" --steps 9:3 -o "$T/w/a"
bad "no steps of run 'r' in the chosen range \\(it has steps 0-19\\)" "$T/db" --run r --steps 100:200 -o "$T/w/a"
# one step is a snapshot, not an error (0416-report-snapshot.sh)
expect_status 0 mt report "$T/db" --run one -o "$T/w/a"
rm -rf "$T/w/a"
bad "unknown algorithm 'nope'" "$T/db" --run r --algos eplb,nope -o "$T/w/a"
bad "no output directory" "$T/db" --run r
bad "must be below --interval" "$T/db" --run r --interval 4 --delay 4 -o "$T/w/a"
bad "unknown model" "$T/db" --run r --model nope -o "$T/w/a"
bad "experts, the run" "$T/db" --run r --model deepseek-v3 -o "$T/w/a"
echo x >"$T/w/file"
bad_file() {
	expect_status 2 mt report "$@"
	[ "$(ls -A "$T/w")" = file ] || { ls -A "$T/w" >&2; fail "files left after '$*'"; }
}
bad_file "$T/db" --run r -o "$T/w/file"
expect_grep "$T/err" "'$T/w/file' exists and is not a directory"
# a directory the system cannot create is an I/O failure: exit 1
for d in "$T/w/file/sub" "$T/w/no/such/dir"; do
	expect_status 1 mt report "$T/db" --run r -o "$d"
	[ "$(ls -A "$T/w")" = file ] || { ls -A "$T/w" >&2; fail "files left after -o $d"; }
done
expect_grep "$T/err" "^moetrace report: cannot create '$T/w/no/such/dir': No such file or directory$"
expect_status 1 mt report "$T/db" --run r -o "$T/w/file/sub"
expect_grep "$T/err" "cannot create '$T/w/file/sub': Not a directory"
rm "$T/w/file"

# a read-only directory (meaningless for root, who may write anyway)
if [ "$(id -u)" != 0 ]; then
	mkdir "$T/w/ro" && chmod 555 "$T/w/ro"
	expect_status 2 mt report "$T/db" --run r -o "$T/w/ro/rep"
	expect_grep "$T/err" "Permission denied"
	expect_status 2 mt report "$T/db" --run r -o "$T/w/ro"
	[ -z "$(ls -A "$T/w/ro")" ] || fail "files left in a read-only directory"
	chmod 755 "$T/w/ro" && rmdir "$T/w/ro"
fi

# episodes: at most 256, as in place, compare and replay; more than the
# window has steps when asked for explicitly is an error, not a silent clamp
expect_status 2 mt report "$T/db" --run r -o "$T/w/e" --episodes 257
expect_grep "$T/err" "--episodes: 257 is out of range \[0, 256\]"
[ ! -e "$T/w/e" ] || fail "a refused report left its directory"
expect_status 2 mt report "$T/db" --run r -o "$T/w/e" --episodes 200
expect_grep "$T/err" "is shorter than --episodes 200"
[ ! -e "$T/w/e" ] || fail "a refused report left its directory"

# the good case still works after all that, and only writes DIR
expect_status 0 mt report "$T/db" --run r -o "$T/w/a"
[ "$(ls -A "$T/w")" = a ] || { ls -A "$T/w" >&2; fail "stray files beside the report"; }
exit 0
