#!/bin/sh
# A TensorRT-LLM statistics directory holds one rank{R}.safetensors per
# rank, as expert_statistic.py names them: the ranks are summed, so a copy
# of a rank's file beside it (a file manager's "rank0 (copy)", "rank00",
# "rank0.old") would count that rank twice, and a rank left out would go
# unnoticed.  Any other name of that pattern and a gap in the ranks are
# refused, exit 2, naming the files or the rank, nothing written.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data/trtllm"
sum() { mt sql --format csv "$T/db" "SELECT sum(tokens) FROM expert_heat JOIN runs USING (run) WHERE name = '$1'" | tail -n 1; }

expect_status 0 mt import "$D" --into "$T/db" --run base
total=$(sum base)
[ "$(sqlite3 "$T/db" "SELECT ranks FROM runs WHERE name = 'base'")" = 2 ] || fail "2 rank files, 2 ranks"

# bad NAME REGEX: the directory $T/NAME is refused, no database written
bad() {
	expect_status 2 mt import "$T/$1" --into "$T/new.db"
	expect_grep "$T/err" "$2"
	[ ! -e "$T/new.db" ] || fail "$1: a refused import left a database"
}
copy() { rm -rf "$T/$1"; mkdir "$T/$1"; cp "$D"/* "$T/$1/"; }

for name in "rank0 (copy)" rank00 rank0.old; do
	copy dup
	cp "$D/rank0.safetensors" "$T/dup/$name.safetensors"
	re=$(printf '%s' "$name" | sed 's/[().]/\\&/g')
	bad dup "'.*/dup/$re.safetensors' is a second file of rank 0 beside '.*/dup/rank0.safetensors' \\(TensorRT-LLM writes one rank\\{R\\}.safetensors per rank\\)"
done
# rank01 beside rank1
copy dup
cp "$D/rank1.safetensors" "$T/dup/rank01.safetensors"
bad dup "rank01.safetensors' is a second file of rank 1 beside '.*/dup/rank1.safetensors'"
# a name of the pattern that is no rank's
copy odd
cp "$D/rank1.safetensors" "$T/odd/rank_last.safetensors"
bad odd "'.*/odd/rank_last.safetensors' is not a rank file name TensorRT-LLM writes \\(rank\\{R\\}.safetensors\\)"
# rank 1 missing between 0 and 2, and rank 0 missing
copy gap
mv "$T/gap/rank1.safetensors" "$T/gap/rank2.safetensors"
bad gap "'.*/gap': rank 1 is missing: no rank1.safetensors beside the files of ranks up to 2"
copy gap0
rm "$T/gap0/rank0.safetensors"
bad gap0 "'.*/gap0': rank 0 is missing: no rank0.safetensors beside the files of ranks up to 1"

# what stays accepted: other files beside the rank files, one rank's file
# given by name (that rank only), and ranks from 0 without a gap
copy ok
cp "$D/rank0.safetensors" "$T/ok/cooccurrence_rank0.safetensors"
cp "$D/rank0.safetensors" "$T/ok/rank0.safetensors.bak"
expect_status 0 mt import "$T/ok" --into "$T/db" --run ok
[ "$(sum ok)" = "$total" ] || fail "other files changed the sum: $(sum ok), not $total"
copy one
cp "$D/rank0.safetensors" "$T/one/rank0 (copy).safetensors"
expect_status 0 mt import "$T/one/rank1.safetensors" --into "$T/db" --run one
exit 0
