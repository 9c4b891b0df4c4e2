#!/bin/sh
# A CSV row whose layer or expert is past the shape --model or
# --layers/--experts fix is refused with file:line, the first such row's,
# like the reader's other errors (it named the file alone), whether the
# file is read once (shape given) or in two passes (--progress); exit 2,
# nothing written.
. "$(dirname "$0")/lib.sh"

# bad FILE REGEX OPTIONS...: refused with exit 2, no database left
bad() {
	f=$1 re=$2; shift 2
	for p in "" --progress; do
		expect_status 2 mt import "$T/$f" --into "$T/new.db" $p "$@"
		expect_grep "$T/err" "$re"
		[ ! -e "$T/new.db" ] || fail "$f: a refused import left a database"
	done
}
printf 'step,layer,expert,tokens\n0,0,0,1\n0,2,1,3\n1,5,0,1\n' >"$T/shape2.csv"
bad shape2.csv "^moetrace import: .*/shape2.csv:3: layer 2 is out of range for the given shape \\(2 MoE layers\\)$" \
	--layers 2 --experts 4
# a blank line counts: the lines are the file's
printf 'step,layer,expert,tokens\n0,0,0,1\n\n0,1,9,3\n0,1,12,3\n' >"$T/bad2.csv"
bad bad2.csv "^moetrace import: .*/bad2.csv:4: expert 9 is out of range for mixtral-8x7b \\(8 experts\\)$" \
	--model mixtral-8x7b
bad bad2.csv "/bad2.csv:4: expert 9 is out of range for the given shape \\(4 experts\\)$" --experts 4
# without a shape given the data's is taken: nothing is out of range
expect_status 0 mt import "$T/bad2.csv" --into "$T/ok.db"
exit 0
