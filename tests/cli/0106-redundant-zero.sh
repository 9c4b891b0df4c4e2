# --redundant 0 asks for no redundant expert (slots = experts / ranks), as
# every engine's num_redundant_experts 0 does; it was taken as "not given",
# so the run's recorded layout (with its redundant slots) was used instead.
. "$(dirname "$0")/lib.sh"
# Mixtral: 8 experts on 4 ranks x 3 slots recorded (4 redundant)
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 5 -q "$T/db"
expect_status 0 mt balance "$T/db" --redundant 0
expect_grep "$T/out" "^run .*, 4 ranks x 2 slots, "
# the same as --slots 2, figure for figure
cp "$T/out" "$T/r0"
expect_status 0 mt balance "$T/db" --slots 2
same_file "$T/r0" "$T/out"
expect_status 0 mt replay "$T/db" --redundant 0 --no-store --algo eplb
expect_grep "$T/out" "4 ranks x 2 slots"
expect_status 0 mt compare "$T/db" --redundant 0 --algos static
expect_grep "$T/out" "4 ranks x 2 slots"
expect_status 0 mt place "$T/db" --redundant 0 --algo eplb
expect_grep "$T/out" "4 ranks x 2 slots"
expect_status 0 mt top --snapshot --redundant 0 "$T/db"
expect_grep "$T/out" '"ranks": 4, "slots": 2'
expect_status 0 mt serve --once --redundant 0 "$T/db"
expect_grep "$T/out" 'slots="2"'
if command -v pdftotext >/dev/null; then
	expect_status 0 mt render "$T/db" imbalance --redundant 0 -o "$T/i.pdf"
	pdftotext -layout "$T/i.pdf" "$T/i.txt"
	expect_grep "$T/i.txt" "\(sum of max / sum of mean\), 4 x 2, "
	expect_status 0 mt report "$T/db" --redundant 0 --algos static,eplb -o "$T/rep"
	pdftotext -layout "$T/rep/report.pdf" "$T/rep.txt"
	expect_grep "$T/rep.txt" "EP layout: 4 ranks x 2 slots \(0 redundant\)"
fi
# --redundant 0 beside --slots is refused as any --redundant is
expect_status 2 mt balance "$T/db" --redundant 0 --slots 2
expect_grep "$T/err" "give --slots or --redundant, not both"
exit 0
