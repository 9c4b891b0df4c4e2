#!/bin/sh
# sql: a corrupt trace is exit 2 whichever function meets it (a corrupt
# deployed placement through the views as a malformed counts blob through
# expert_heat), and the moetrace functions check their arguments' types:
# counts_at(blob, 'x') is an error naming the argument, not expert 0's
# count; a NULL argument gives NULL.
. "$(dirname "$0")/lib.sh"

expect_status 0 mt gen --model mixtral-8x7b --steps 6 --ranks 4 --slots 3 -q "$T/db"
cp "$T/db" "$T/bad.db"
expect_status 0 mt sql --write "$T/bad.db" "INSERT INTO deployed
	WITH RECURSIVE l(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM l WHERE x < 31)
	SELECT 1, 0, x, 4, 3, CASE WHEN x = 5 THEN randomblob(7) ELSE static_phy2log(8, 4, 3) END FROM l"
for q in "SELECT * FROM layer_imbalance WHERE layer = 5" "SELECT * FROM device_load WHERE layer = 5" \
	"SELECT * FROM deployed_slots WHERE layer = 5"; do
	expect_status 2 mt sql "$T/bad.db" "$q"
	expect_grep "$T/err" "a placement blob holds int32 slots, not 7 bytes"
done
expect_status 2 mt balance "$T/bad.db" # as every other command
expect_status 2 mt sql "$T/db" "SELECT counts_json(x'0104ff')"
expect_grep "$T/err" "counts_json: malformed counts blob"

# argument types
c="counts_encode('[5,6,7]')"
for v in "counts_at($c, 'x'):counts_at: expert must be an integer, got text" \
	"counts_at($c, 1.5):counts_at: expert must be an integer, got a real" \
	"counts_at($c, x'01'):counts_at: expert must be an integer, got a blob" \
	"static_phy2log(8, 'four', 2):static_phy2log: ranks must be an integer, got text" \
	"static_phy2log(8, 4611686018427387904, 4611686018427387904):static_phy2log: 4611686018427387904 ranks x 4611686018427387904 slots cannot hold 8 experts" \
	"counts_encode(x'5b315d'):counts_encode: expected JSON text, got a blob" \
	"phy2log_json('[0,1]'):phy2log_json: expected a placement blob, got text" \
	"moetrace_model('mixtral-8x7b', 3):moetrace_model: the field must be text, got an integer" \
	"counts_imbalance($c, '[0,1,2]', 'x'):counts_imbalance: ranks must be a positive integer"; do
	expect_status 2 mt sql "$T/db" "SELECT ${v%%:*}"
	expect_grep "$T/err" "^moetrace sql: ${v#*:} \\(in: "
done
# what stays valid: an integer as text (SQL's numeric affinity), NULL, out of range
expect_status 0 mt sql --format csv "$T/db" "SELECT counts_at($c, '2'), counts_at($c, 1),
	counts_at($c, NULL) IS NULL, counts_at($c, 3) IS NULL, counts_at($c, -1) IS NULL,
	static_phy2log(8, NULL, 2) IS NULL, moetrace_model('mixtral-8x7b', 'layers')"
expect_grep "$T/out" "^7,6,1,1,1,1,32$"
exit 0
