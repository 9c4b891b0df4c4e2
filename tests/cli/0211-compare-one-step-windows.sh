# compare and report on windows of one step each: '1 step', not '1 steps'.
. "$(dirname "$0")/lib.sh"
expect_status 0 mt gen --model mixtral-8x7b --steps 10 --seed 5 -q "$T/db"
expect_status 0 mt compare "$T/db" --steps 5:5 --algos static
expect_grep "$T/out" "fitted on steps 5\.\.5 \(1 step\), scored on the next 6\.\.6 \(1 step\)$"
expect_status 0 mt compare "$T/db" --steps 4:5 --algos static
expect_grep "$T/out" "fitted on steps 4\.\.5 \(2 steps\), scored on the next 6\.\.7 \(2 steps\)$"
command -v pdftotext >/dev/null || exit 0
expect_status 0 mt report "$T/db" --steps 5:6 --algos static,eplb -o "$T/rep"
pdftotext "$T/rep/report.pdf" "$T/rep.txt"
tr '\n' ' ' <"$T/rep.txt" | tr -s ' ' >"$T/flat"
expect_grep "$T/flat" "fitted on steps 5-5 \(1 step[,)]"
expect_grep "$T/flat" "scored on the next 6-6 \(1 step\)"
expect_nogrep "$T/flat" "\(1 steps"
exit 0
