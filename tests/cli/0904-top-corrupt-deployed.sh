#!/bin/sh
# top and the deployed placement: a valid one recorded for the run's layout
# is shown, one recorded for another layout falls back to static (not
# corruption), and a corrupt one (a blob of the wrong size, an expert left
# without a slot, layers missing) is an error as in the other commands:
# --snapshot exits 2 with the store's message naming the layer and the
# trace, and the interactive view restores the terminal before printing it.
. "$(dirname "$0")/lib.sh"
mt gen --help >/dev/null 2>&1 || skip "moetrace gen is not built"
command -v python3 >/dev/null || skip "python3 not installed"

expect_status 0 mt gen --model mixtral-8x7b --steps 24 --ranks 4 --slots 3 -q "$T/good.db"
# with_deployed NAME SQL-SELECT: NAME.db = good.db + deployed rows from
# SELECT over l(layer) = 0..31 (static_phy2log builds int32 blobs)
with_deployed() {
	cp "$T/good.db" "$T/$1.db"
	expect_status 0 mt sql --write "$T/$1.db" "INSERT INTO deployed
	  WITH RECURSIVE l(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM l WHERE x < 31) $2"
}
placement() { # DB: the placement field of a snapshot
	mt top --snapshot "$1" >"$T/snap.json" 2>"$T/err" || {
		cat "$T/err" >&2
		fail "top --snapshot $1 failed"
	}
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layout"]["placement"])' \
		"$T/snap.json"
}

# ---- not corrupt: the run's layout is shown, another layout falls back
[ "$(placement "$T/good.db")" = static ] || fail "a trace without a deployed placement is not static"
with_deployed ok "SELECT 1, 0, x, 4, 3, static_phy2log(8, 4, 3) FROM l"
[ "$(placement "$T/ok.db")" = deployed ] || fail "the deployed placement is not shown"
with_deployed other "SELECT 1, 0, x, 2, 4, static_phy2log(8, 2, 4) FROM l"
[ "$(placement "$T/other.db")" = static ] ||
	fail "a placement recorded for another layout does not fall back to static"

# ---- corrupt: refused by top as by balance
with_deployed size "SELECT 1, 0, x, 4, 3, CASE WHEN x = 5 THEN randomblob(7)
	  ELSE static_phy2log(8, 4, 3) END FROM l"
with_deployed noslot "SELECT 1, 0, x, 4, 3, CASE WHEN x = 2 THEN zeroblob(48)
	  ELSE static_phy2log(8, 4, 3) END FROM l"
with_deployed fewer "SELECT 1, 0, x, 4, 3, static_phy2log(8, 4, 3) FROM l WHERE x < 4"
for v in size:"layer 5 is corrupt: 7 bytes for 4 ranks x 3 slots" \
	noslot:"layer 2 is corrupt: it gives expert 1 no slot" \
	fewer:"is corrupt: it covers 4 of 32 layers"; do
	db="$T/${v%%:*}.db" msg=${v#*:}
	sum=$(cksum <"$db")
	expect_status 2 mt top --snapshot "$db"
	expect_grep "$T/err" "^moetrace top: deployed placement.* $msg"
	expect_grep "$T/err" "'$db'"
	[ ! -s "$T/out" ] || fail "${v%%:*}: top --snapshot printed a frame of a corrupt trace"
	expect_status 2 mt balance "$db"
	expect_grep "$T/err" "$msg"
	[ "$(cksum <"$db")" = "$sum" ] || fail "${v%%:*}: top changed the trace"
done

# ---- the interactive view: the message comes after the terminal is
# restored (the alternate screen left, ESC [ ? 1049 l), exit status 2
command -v script >/dev/null || skip "no script(1) for a terminal"
[ "${MOETRACE_VALGRIND:-0}" = 1 ] && exit 0 # script runs the binary itself
TERM=xterm script -qec "'$MOETRACE' top --delay-ms 50 --iterations 100 '$T/size.db'" \
	"$T/typescript" </dev/null >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ] || { cat -v "$T/typescript" >&2; fail "interactive top on a corrupt trace exited $rc"; }
python3 - "$T/typescript" <<'EOF' || fail "the message is not after the terminal was restored"
import sys
t = open(sys.argv[1], "rb").read()
restored = t.rfind(b"\x1b[?1049l")
msg = t.find(b"moetrace top: deployed placement of layer 5 is corrupt")
sys.exit(0 if 0 <= restored < msg else 1)
EOF
exit 0
