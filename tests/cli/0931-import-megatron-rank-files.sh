#!/bin/sh
# A Megatron-LM trace directory holds one router_trace_rank{R}.jsonl per
# rank (router_trace.py), or one rank{R}.jsonl per rank in
# tokens_per_expert/ (activation_logging.py), and the router tracer stamps
# each record with its rank: a copy of a rank's file, any other name of the
# pattern, a gap in the ranks, and a record whose "rank" is not its file's
# are refused, exit 2, naming the files, the rank or the line, nothing
# written.  Before, a copy beside rank 0's file counted rank 0 twice.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data/megatron"
sum() { mt sql --format csv "$T/db" "SELECT sum(tokens) FROM expert_heat JOIN runs USING (run) WHERE name = '$1'" | tail -n 1; }

expect_status 0 mt import "$D" --into "$T/db" --run base --experts 4
[ "$(sum base)" = 32 ] || fail "the two ranks route 32 tokens x top-k, not $(sum base)"

bad() { # NAME REGEX [options]
	dir=$1 re=$2; shift 2
	expect_status 2 mt import "$T/$dir" --into "$T/new.db" --experts 4 "$@"
	expect_grep "$T/err" "$re"
	[ ! -e "$T/new.db" ] || fail "$dir: a refused import left a database"
}
copy() { rm -rf "$T/$1"; mkdir "$T/$1"; cp "$D"/router_trace_rank*.jsonl "$T/$1/"; }

copy dup
cp "$D/router_trace_rank0.jsonl" "$T/dup/router_trace_rank0 (copy).jsonl"
bad dup "'.*/dup/router_trace_rank0 \\(copy\\).jsonl' is a second file of rank 0 beside '.*/dup/router_trace_rank0.jsonl' \\(Megatron-LM writes one router_trace_rank\\{R\\}.jsonl per rank\\)"
copy dup
cp "$D/router_trace_rank1.jsonl" "$T/dup/router_trace_rank01.jsonl"
bad dup "router_trace_rank01.jsonl' is a second file of rank 1 beside"
# rank 0 and rank 2, no rank 1
copy gap
mv "$T/gap/router_trace_rank1.jsonl" "$T/gap/router_trace_rank2.jsonl"
bad gap "'.*/gap': rank 1 is missing: no router_trace_rank1.jsonl beside the files of ranks up to 2"
# a rank's file renamed as another's: its records say which rank wrote them
mkdir "$T/swap"
cp "$D/router_trace_rank0.jsonl" "$T/swap/router_trace_rank1.jsonl"
cp "$D/router_trace_rank1.jsonl" "$T/swap/router_trace_rank0.jsonl"
bad swap "swap/router_trace_rank0.jsonl:1: field 'rank': 1, but the file's name is rank 0's"
# ... also when a record's layout takes the other reading path (an extra field)
mkdir "$T/swap2"
cp "$D/router_trace_rank0.jsonl" "$T/swap2/router_trace_rank0.jsonl"
sed 's/"rank": 1/"rank": 0/; s/"topk"/"x": 1, "topk"/' "$D/router_trace_rank1.jsonl" >"$T/swap2/router_trace_rank1.jsonl"
bad swap2 "swap2/router_trace_rank1.jsonl:1: field 'rank': 0, but the file's name is rank 1's"
# one file given by its engine name is held to it too
expect_status 2 mt import "$T/swap/router_trace_rank1.jsonl" --into "$T/new.db" --experts 4
expect_grep "$T/err" "router_trace_rank1.jsonl:1: field 'rank': 0, but the file's name is rank 1's"
# tokens-per-expert logs: a copy in tokens_per_expert/ is refused alike
mkdir -p "$T/save/tokens_per_expert"
cp "$D"/tokens_per_expert/rank*.jsonl "$T/save/tokens_per_expert/"
expect_status 0 mt import "$T/save" --into "$T/db" --run tpe --experts 4
cp "$D/tokens_per_expert/rank1.jsonl" "$T/save/tokens_per_expert/rank1.jsonl.jsonl"
bad save "'.*/save/tokens_per_expert/rank1.jsonl.jsonl' is a second file of rank 1 beside"

# accepted: the traces' other files (sidecars), a renamed file given alone
copy ok
: >"$T/ok/hidden_states_rank0.bin"
cp "$D/router_trace_rank0.jsonl" "$T/ok/router_trace_rank0.jsonl.bak"
expect_status 0 mt import "$T/ok" --into "$T/db" --run ok --experts 4
[ "$(sum ok)" = 32 ] || fail "sidecar files changed the sum: $(sum ok)"
cp "$D/router_trace_rank0.jsonl" "$T/mine.jsonl"
expect_status 0 mt import "$T/mine.jsonl" --into "$T/db" --run mine --experts 4 --format megatron
exit 0
