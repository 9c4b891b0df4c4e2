# render: a replay of another run is named by its run's name, not by an id
# that may be another run's name; without --run the first replay's run is
# found by its id.
. "$(dirname "$0")/lib.sh"

mt replays --help >/dev/null 2>&1 || skip "no replay command in this build"
db=$T/t.db
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 1 --run 2 "$db"     # id 1, named "2"
expect_status 0 mt gen --model mixtral-8x7b --steps 40 --seed 2 --run other "$db" # id 2
expect_status 0 mt replay "$db" --run 2      # replay 1, of run id 1
expect_status 0 mt replay "$db" --run other  # replay 2, of run id 2

expect_status 2 mt render "$db" imbalance --replay 2 --run 2 -o "$T/x.png"
expect_grep "$T/err" "replay 2 is of run 'other', not of --run '2'$"
expect_status 2 mt render "$db" imbalance --replay 1 --replay 2 -o "$T/x.png"
expect_grep "$T/err" "replays 1 and 2 are of different runs \('2' and 'other'\): draw them one at a time"
expect_nogrep "$T/err" "--run"
expect_status 2 mt render "$db" imbalance --replay 2 --replay 1 -o "$T/x.png"
expect_grep "$T/err" "replays 2 and 1 are of different runs \('other' and '2'\)"
[ ! -e "$T/x.png" ] || fail "x.png written on a refusal"

# without --run, replay 2 is drawn with its own run (id 2), not the run named "2"
expect_status 2 mt render "$db" imbalance --replay 2 --layer 99 -o "$T/x.png"
expect_grep "$T/err" "run 'other' has layers"
expect_status 0 mt render "$db" imbalance --replay 2 -o "$T/ok.png"
expect_status 0 mt render "$db" imbalance --replay 2 --run other -o "$T/ok2.png"
same_file "$T/ok.png" "$T/ok2.png"
exit 0
