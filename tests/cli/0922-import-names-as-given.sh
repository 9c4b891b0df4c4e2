#!/bin/sh
# Names and the model are stored as given or refused, never changed on the
# way in: a NUL inside a JSON string (which would cut the model short), a
# model that is not valid UTF-8 (which export would write back as U+FFFD)
# or a lone surrogate escape, a model longer than the store keeps, a --run
# that is not UTF-8 or too long, and a run name taken from a file name that
# is not UTF-8 (refused, asking for --run).  A UTF-8 model survives an
# export and a re-import byte for byte.
. "$(dirname "$0")/lib.sh"

rec='{"step":0,"layer":0,"counts":[1,2]}'
bad() {
	printf '%s\n%s\n' "$1" "$rec" >"$T/bad.jsonl"
	expect_status 2 mt import "$T/bad.jsonl" --into "$T/new.db"
	expect_grep "$T/err" "$2"
	[ ! -e "$T/new.db" ] || fail "a refused import left a database: $1"
}
bad '{"moetrace":1,"model":"x\u0000y"}' \
	"bad.jsonl:1: field 'model': a string holds \\\\u0000 \\(NUL\\), which moetrace cannot store"
bad "$(printf '{"moetrace":1,"model":"x\377y"}')" \
	"bad.jsonl:1: malformed JSON line: field 'model': byte 0xff is not valid UTF-8"
bad '{"moetrace":1,"model":"x\ud800y"}' \
	"bad.jsonl:1: field 'model': \\\\ud800 is the first half of a UTF-16 surrogate pair"
bad "{\"moetrace\":1,\"model\":\"$(printf '%064d' 0)\"}" \
	"bad.jsonl:1: field 'model': 64 bytes, a model name has at most 63"
# a NUL in a field nobody stores is refused all the same: the line is not
# what any reader can keep
printf '{"step":0,"layer":0,"counts":[1,2],"note":"a\\u0000b"}\n' >"$T/bad.jsonl"
expect_status 2 mt import "$T/bad.jsonl" --into "$T/new.db"
expect_grep "$T/err" "bad.jsonl:1: field 'note': a string holds"

# a UTF-8 model (escaped or not) comes back as it went in
printf '{"moetrace":1,"model":"m\\u00f6del-\342\234\223"}\n%s\n' "$rec" >"$T/m.jsonl"
expect_status 0 mt import "$T/m.jsonl" --into "$T/db" --run m
expect_status 0 mt export "$T/db" --run m --format jsonl -o "$T/m2.jsonl"
expect_status 0 mt import "$T/m2.jsonl" --into "$T/db" --run m2
expect_status 0 mt export "$T/db" --run m2 --format jsonl -o "$T/m3.jsonl"
[ "$(sqlite3 "$T/db" "SELECT DISTINCT hex(model) FROM runs")" = "$(printf 'm\303\266del-\342\234\223' | od -An -tx1 | tr -d ' \n' | tr a-f A-F)" ] ||
	fail "the model changed on its way in: $(sqlite3 "$T/db" "SELECT hex(model) FROM runs")"
[ "$(tail -n +2 "$T/m2.jsonl")" = "$(tail -n +2 "$T/m3.jsonl")" ] || fail "a second round changed the file"

# run names: from --run or from the file's name
nonutf=$(printf 'x\377y')
printf '%s\n' "$rec" >"$T/$nonutf.jsonl"
expect_status 2 mt import "$T/$nonutf.jsonl" --into "$T/new.db"
expect_grep "$T/err" "cannot name the run after '.*x.*y.jsonl': the name is not valid UTF-8 \\(give --run NAME\\)"
[ ! -e "$T/new.db" ] || fail "a refused import left a database"
expect_status 2 mt import "$T/bad.jsonl" --into "$T/new.db" --run "$nonutf"
expect_grep "$T/err" "--run: 'x.*y' is not valid UTF-8"
expect_status 2 mt import "$T/m.jsonl" --into "$T/new.db" --run "$(printf '%0128d' 0)"
expect_grep "$T/err" "--run: 128 bytes, a run name has at most 127"
[ ! -e "$T/new.db" ] || fail "a refused import left a database"
expect_status 0 mt import "$T/$nonutf.jsonl" --into "$T/db" --run given
# a long UTF-8 file name gives a shorter name, cut between characters
long=$(printf 'é%.0s' $(seq 100))
printf '%s\n' "$rec" >"$T/$long.jsonl"
expect_status 0 mt import "$T/$long.jsonl" --into "$T/db"
[ "$(sqlite3 "$T/db" "SELECT length(CAST(name AS BLOB)) FROM runs WHERE name LIKE 'é%'")" = 126 ] ||
	fail "the long name was not cut to 63 whole characters"
exit 0
