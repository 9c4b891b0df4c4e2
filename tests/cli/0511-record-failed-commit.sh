#!/bin/sh
# A commit that fails (an I/O error from the file size limit; a full disk
# in a small tmpfs where one can be mounted) loses its own batch and no
# more: record stops with an error naming the lost steps, exits 1, and its
# counters are true: "recorded" is exactly the steps the file holds, and
# recorded + dropped + failed is every step it took.  Before, the recorder
# stayed inside the failed transaction and every later batch "committed"
# into it, to be discarded at close (recorded 1936, 1088 in the file).
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"

# check_counts OUT DB RUN: the summary in OUT against what DB holds
check_counts() {
	out=$1 db=$2 run=$3
	line=$(grep '^recorded ' "$out") || { cat "$out"; fail "no summary line"; }
	rec=$(echo "$line" | sed 's/^recorded \([0-9]*\), dropped \([0-9]*\), failed \([0-9]*\);.*/\1/')
	dropped=$(echo "$line" | sed 's/^recorded \([0-9]*\), dropped \([0-9]*\), failed \([0-9]*\);.*/\2/')
	failed=$(echo "$line" | sed 's/^recorded \([0-9]*\), dropped \([0-9]*\), failed \([0-9]*\);.*/\3/')
	taken=$(sed -n "s/^run '$run' in .*: \([0-9]*\) steps of .*/\1/p" "$out")
	ic=$(sqlite3 "$db" "PRAGMA integrity_check")
	[ "$ic" = ok ] || fail "$db: integrity_check says: $ic"
	stored=$(sqlite3 "$db" "SELECT count(*) FROM steps s JOIN runs r ON r.run = s.run
		WHERE r.name = '$run'")
	rows=$(sqlite3 "$db" "SELECT count(*) FROM counts c JOIN runs r ON r.run = c.run
		WHERE r.name = '$run'")
	[ "$rec" = "$stored" ] || fail "record says recorded $rec, the file holds $stored steps"
	[ "$rows" = $((32 * stored)) ] || fail "$rows counts rows for $stored steps of 32 layers"
	[ "$failed" -gt 0 ] || fail "no step counted as failed: $line"
	[ $((rec + dropped + failed)) = "$taken" ] ||
		fail "recorded $rec + dropped $dropped + failed $failed is not the $taken steps taken"
	# what info reports for the run is what the file holds
	mt info --json --run "$run" "$db" >"$T/info" 2>&1 || { cat "$T/info"; fail "info fails"; }
	expect_grep "$T/info" "\"steps\": $stored,"
}

# ---- an I/O error: writes past the file size limit fail (EFBIG); the
# signal the kernel sends with it is ignored, as SQLite expects
db="$T/f.db"
(
	trap '' XFSZ
	ulimit -f 1024
	exec "$MOETRACE" record --model mixtral-8x7b --steps 4000 --block --run full "$db"
) >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] || { cat "$T/out" "$T/err"; fail "record into a full file exited $rc, not 1"; }
expect_grep "$T/err" "^moetrace record: cannot commit steps [0-9]+\.\.[0-9]+ \([0-9]+ lost\): "
check_counts "$T/out" "$db" full
# the message names the first batch lost (a later one may commit, and
# later ones fail too: they are counted in failed, not named)
first=$(sed -n 's/^moetrace record: cannot commit steps \([0-9]*\)\.\..*/\1/p' "$T/err")
gap=$(sqlite3 "$db" "SELECT min(step) + 1 FROM steps WHERE step + 1 NOT IN (SELECT step FROM steps)")
[ "$first" = "$gap" ] || fail "the message names step $first, the first lost is $gap"
# it stopped at the failure instead of generating all 4000 steps into it
[ "$taken" -lt 4000 ] || fail "record went on after the failed commit: $taken steps"
# the file is intact and takes new steps once there is room again
expect_status 0 mt record --model mixtral-8x7b --steps 5 --run after "$db"
expect_grep "$T/out" "recorded 5, dropped 0, failed 0"

# ---- a full disk (SQLITE_FULL): a 1 MiB tmpfs in a private mount namespace,
# where one can be made without privileges
if unshare -rm true 2>/dev/null; then
	mkdir "$T/mnt" "$T/copy"
	unshare -rm sh -c 'mount -t tmpfs -o size=1m tmpfs "$1" || exit 77
		"$2" record --model mixtral-8x7b --steps 4000 --block --run tmpfs "$1/t.db" \
			>"$3/out" 2>"$3/err"
		rc=$?
		cp "$1"/t.db* "$3/copy/"
		exit $rc' sh "$T/mnt" "$MOETRACE" "$T"
	rc=$?
	if [ $rc -ne 77 ]; then
		[ $rc -eq 1 ] || { cat "$T/out" "$T/err"; fail "record into a full tmpfs exited $rc"; }
		expect_grep "$T/err" "^moetrace record: cannot commit steps [0-9]+\.\.[0-9]+ \([0-9]+ lost\): "
		check_counts "$T/out" "$T/copy/t.db" tmpfs
	fi
fi
exit 0
