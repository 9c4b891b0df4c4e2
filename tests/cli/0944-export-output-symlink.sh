#!/bin/sh
# An -o that is a symbolic link is written through: export, place and
# render replace the file the link points to (through a chain of links,
# relative to the link's directory, creating it when it does not exist
# yet) and leave the link as it was, where they used to replace the link
# with a plain file.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 12 --ranks 4 --slots 3 -q "$T/x.db"
deploy_mid_run "$T/x.db" 0
mkdir "$T/d" "$T/e"
# link -> d/mid -> ../e/real.csv: a chain, each relative to its directory
echo old >"$T/e/real.csv"
ln -s d/mid "$T/link.csv"
ln -s ../e/real.csv "$T/d/mid"
expect_status 0 mt export "$T/x.db" --format csv -o "$T/link.csv"
[ -L "$T/link.csv" ] && [ "$(readlink "$T/link.csv")" = d/mid ] || fail "export replaced the link"
[ -L "$T/d/mid" ] || fail "export replaced the link in the middle of the chain"
expect_status 0 mt export "$T/x.db" --format csv -o "$T/plain.csv"
same_file "$T/e/real.csv" "$T/plain.csv"
# a link to a file that does not exist yet: the file is created
ln -s e/new.jsonl "$T/new.jsonl"
expect_status 0 mt export "$T/x.db" --format jsonl -o "$T/new.jsonl"
[ -L "$T/new.jsonl" ] && [ -f "$T/e/new.jsonl" ] || fail "export did not create the link's target"
expect_status 0 mt import "$T/e/new.jsonl" --into "$T/back.db"
# placements: export --placement and place -o
ln -s e/dep.json "$T/dep.json"
expect_status 0 mt export "$T/x.db" --placement deployed --format sglang -o "$T/dep.json"
[ -L "$T/dep.json" ] && [ -s "$T/e/dep.json" ] || fail "export --placement replaced the link"
ln -s e/p.json "$T/p.json"
expect_status 0 mt place "$T/x.db" --algo eplb --format sglang -o "$T/p.json"
expect_status 0 mt place "$T/x.db" --algo eplb --format sglang -o "$T/p-plain.json"
[ -L "$T/p.json" ] || fail "place replaced the link"
same_file "$T/e/p.json" "$T/p-plain.json"
# a chart: the format follows the name given
ln -s e/chart.svg "$T/h.svg"
expect_status 0 mt render "$T/x.db" heatmap -o "$T/h.svg"
[ -L "$T/h.svg" ] || fail "render replaced the link"
grep -q '<svg' "$T/e/chart.svg" || fail "render did not write the link's target"
# no temporary file is left beside the link or its target
left=$(cd "$T" && find . -name '*tmp*')
[ -z "$left" ] || fail "a temporary file was left: $left"
