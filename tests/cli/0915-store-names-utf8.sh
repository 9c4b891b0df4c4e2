# A run's name and model are stored only as valid UTF-8, whichever command
# names the run (gen, record, merge; import says so itself, tests/cli/0922):
# an export writes them into JSON, where other bytes would come back as
# U+FFFD, a name other than the one stored.  Refused with exit 2, nothing
# written.
. "$(dirname "$0")/lib.sh"
bad=$(printf 'run\377x')
expect_status 2 mt gen --model mixtral-8x7b --steps 5 --run "$bad" -q "$T/g.db"
expect_grep "$T/err" "^moetrace gen: .*run name 'run.*x' is not valid UTF-8"
[ ! -e "$T/g.db" ] || fail "a refused gen left its database"
expect_status 2 mt record --model mixtral-8x7b --steps 5 --block --run "$bad" "$T/r.db"
expect_grep "$T/err" "run name 'run.*x' is not valid UTF-8"
[ ! -e "$T/r.db" ] || fail "a refused record left its database"
expect_status 0 mt gen --model mixtral-8x7b --steps 5 --run a -q "$T/a.db"
expect_status 0 mt gen --model mixtral-8x7b --steps 5 --run b -q "$T/b.db"
expect_status 2 mt merge --sum --name "$bad" "$T/m.db" "$T/a.db" "$T/b.db"
expect_grep "$T/err" "run name 'run.*x' is not valid UTF-8"
[ ! -e "$T/m.db" ] || fail "a refused merge left its database"
# a valid name of many bytes per character is kept as given
expect_status 0 mt gen --model mixtral-8x7b --steps 5 --run "säule-日本" -q "$T/u.db"
expect_status 0 mt info "$T/u.db"
expect_grep "$T/out" "^run 1 'säule-日本' "
# merge names its run after the first shard's, cut to 100 bytes: between
# characters, not inside one (an é at bytes 100-101)
long=$(printf 'a%.0s' $(seq 99))é
expect_status 0 mt gen --model mixtral-8x7b --steps 5 --run "$long" -q "$T/l1.db"
expect_status 0 mt gen --model mixtral-8x7b --steps 5 --run "$long" -q "$T/l2.db"
expect_status 0 mt merge --sum "$T/lm.db" "$T/l1.db" "$T/l2.db"
expect_status 0 mt info "$T/lm.db"
expect_grep "$T/out" "^run 1 '$(printf 'a%.0s' $(seq 99))-merged' "
