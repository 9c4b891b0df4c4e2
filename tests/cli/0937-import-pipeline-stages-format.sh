#!/bin/sh
# --pipeline-stages only means something for Megatron-LM rank files: given
# with another format it is refused (exit 2, nothing written), as
# --replicated is with any but SGLang dumps, not silently ignored.
. "$(dirname "$0")/lib.sh"
D="$MOETRACE_TOP/tests/data"

for f in heat.csv jsonl/heat.jsonl trtllm; do
	case $f in
	*.csv) fmt=csv ;; *.jsonl) fmt=jsonl ;; *) fmt=trtllm ;;
	esac
	expect_status 2 mt import "$D/$f" --into "$T/new.db" --pipeline-stages 2
	expect_grep "$T/err" "^moetrace import: --pipeline-stages applies to Megatron-LM traces, '.*$f' is $fmt$"
	[ ! -e "$T/new.db" ] || fail "$f: a refused import left a database"
done
expect_status 2 mt import "$D/heat.csv" --into "$T/new.db" --replicated 2
expect_grep "$T/err" "^moetrace import: --replicated applies to SGLang dumps, '.*heat.csv' is csv$"
# Megatron-LM traces take it
expect_status 0 mt import "$D/megatron/pp2" --into "$T/db" --pipeline-stages 2 --experts 4
exit 0
