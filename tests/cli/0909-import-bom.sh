#!/bin/sh
# A UTF-8 byte order mark (as some editors write) before the first line is
# skipped in JSON lines as in CSV: our JSON lines and Megatron-LM router
# traces import to the same cells with and without it, by name or by
# content; a BOM anywhere else is still a malformed line.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"
bom=$(printf '\357\273\277')
cells() { mt sql --format csv "$T/db" "SELECT step, layer, counts_json(data) FROM counts
	WHERE run = (SELECT run FROM runs WHERE name = '$1') ORDER BY 1, 2"; }

expect_status 0 mt import "$D/jsonl/heat.jsonl" --into "$T/db" --run plain
{ printf '%s' "$bom"; cat "$D/jsonl/heat.jsonl"; } >"$T/bom.jsonl"
expect_status 0 mt import "$T/bom.jsonl" --into "$T/db" --run bom
[ "$(cells bom)" = "$(cells plain)" ] || fail "a BOM changed the imported JSON lines"
# detected by content, not by name
cp "$T/bom.jsonl" "$T/bom-trace"
expect_status 0 mt import "$T/bom-trace" --into "$T/db" --run sniffed
[ "$(cells sniffed)" = "$(cells plain)" ] || fail "a BOM hid the JSON lines from detection"

mkdir "$T/meg"
for f in "$D"/megatron/router_trace_rank*.jsonl; do
	{ printf '%s' "$bom"; cat "$f"; } >"$T/meg/$(basename "$f")"
done
expect_status 0 mt import "$D/megatron" --into "$T/db" --run megplain
expect_status 0 mt import "$T/meg" --into "$T/db" --run megbom
[ "$(cells megbom)" = "$(cells megplain)" ] || fail "a BOM changed the Megatron-LM import"

# only at the start of the file
{ head -n 1 "$D/jsonl/heat.jsonl"; printf '%s' "$bom"; tail -n +2 "$D/jsonl/heat.jsonl"; } >"$T/mid.jsonl"
expect_status 2 mt import "$T/mid.jsonl" --into "$T/db" --run mid
expect_grep "$T/err" "mid.jsonl:2:"
exit 0
