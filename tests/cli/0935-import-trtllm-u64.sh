#!/bin/sh
# A safetensors count too large for a 32-bit count is refused naming the
# value the file holds: a U64 of 2^63 or 2^64 - 1 was reported as
# 9223372036854775807 (read through an int64); I64 values keep their sign.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 writes the samples"

# st FILE DTYPE V: one rank file holding key 0_3 = [1, V]
st() {
	mkdir -p "$(dirname "$1")"
	python3 - "$1" "$2" "$3" <<'PY'
import json, struct, sys
fmt = {"U64": "<Q", "I64": "<q", "U32": "<I"}[sys.argv[2]]
raw = struct.pack(fmt, 1) + struct.pack(fmt, int(sys.argv[3]))
h = json.dumps({"0_3": {"dtype": sys.argv[2], "shape": [2], "data_offsets": [0, len(raw)]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + raw)
PY
}
bad() { # DTYPE VALUE WHAT
	rm -rf "$T/d"
	st "$T/d/rank0.safetensors" "$1" "$2"
	expect_status 2 mt import "$T/d" --into "$T/new.db"
	expect_grep "$T/err" "rank0.safetensors: key '0_3': expert 1: $2 is $3$"
	[ ! -e "$T/new.db" ] || fail "a refused import left a database"
}
bad U64 9223372036854775808 "past a 32-bit count"
bad U64 18446744073709551615 "past a 32-bit count"
bad U64 4294967296 "past a 32-bit count"
bad I64 9223372036854775807 "past a 32-bit count"
bad I64 -9223372036854775808 "negative"
bad I64 -1 "negative"
# the largest count is taken as it is
st "$T/ok/rank0.safetensors" U64 4294967295
expect_status 0 mt import "$T/ok" --into "$T/db"
[ "$(mt sql --format csv "$T/db" "SELECT max(tokens) FROM expert_heat" | tail -n 1)" = 4294967295 ] ||
	fail "a U64 count of 2^32 - 1 changed"
exit 0
