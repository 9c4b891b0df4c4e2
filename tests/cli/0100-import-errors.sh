# moetrace import: every kind of bad input is refused with file:line and
# field, exit 2, and the database is left exactly as it was.
. "$(dirname "$0")/lib.sh"

good="$T/good.csv"
printf 'step,layer,expert,tokens\n0,0,0,5\n0,0,1,3\n1,0,0,2\n1,1,1,7\n' >"$good"
expect_status 0 mt import "$good" --into "$T/db" --run base
cp "$T/db" "$T/db.before"
sum_before=$(sqlite3 "$T/db" "SELECT count(*) FROM counts; SELECT count(*) FROM runs")

bad() { # name expected-message-regex csv-content
	printf "$3" >"$T/$1.csv"
	expect_status 2 mt import "$T/$1.csv" --into "$T/db" --run "$1"
	expect_grep "$T/err" "$2"
	[ "$(sqlite3 "$T/db" "SELECT count(*) FROM counts; SELECT count(*) FROM runs")" = "$sum_before" ] ||
		fail "$1: the database changed"
	[ "$(sqlite3 "$T/db" "SELECT count(*) FROM runs WHERE name = '$1'")" = 0 ] || fail "$1: run left behind"
}

bad empty       "empty file"                                  ''
bad noheader    "nohead.*|missing header column|unknown column" '0,0,0,5\n'
bad missingcol  "missing header column 'tokens'"              'step,layer,expert\n0,0,0\n'
bad unknowncol  "unknown column 'count'"                      'step,layer,expert,count\n0,0,0,1\n'
bad nonnumeric  "bad.csv:3: field 'tokens': 'x5' is not an integer|nonnumeric.csv:3: field 'tokens': 'x5' is not an integer" 'step,layer,expert,tokens\n0,0,0,5\n0,0,1,x5\n'
bad negative    "negative.csv:2: field 'tokens': -3 is negative" 'step,layer,expert,tokens\n0,0,0,-3\n'
bad overflow    "overflow.csv:2: field 'tokens': 4294967296 overflows" 'step,layer,expert,tokens\n0,0,0,4294967296\n'
bad hugeint     "hugeint.csv:2: field 'step'.*overflows"      'step,layer,expert,tokens\n99999999999999999999,0,0,1\n'
bad duplicate   "duplicate.csv:4: duplicate row for step 0, layer 0, expert 1" 'step,layer,expert,tokens\n0,0,1,5\n0,0,0,1\n0,0,1,2\n'
bad fields      "fields.csv:2: 3 fields, the header has 4"    'step,layer,expert,tokens\n0,0,1\n'
bad extra       "extra.csv:2: 5 fields, the header has 4"     'step,layer,expert,tokens\n0,0,1,2,3\n'
bad extra2      "extra2.csv:2: 6 fields, the header has 4"    'step,layer,expert,tokens\n0,0,1,2,3,4\n'
bad order       "order.csv:3: field 'step': 0 comes after step 1" 'step,layer,expert,tokens\n1,0,0,5\n0,0,0,1\n'
bad negexpert   "negexpert.csv:2: field 'expert': -1 is out of range" 'step,layer,expert,tokens\n0,0,-1,5\n'
bad badphase    "badphase.csv:2: field 'phase': 'warmup'"     'step,layer,expert,tokens,phase\n0,0,0,5,warmup\n'
bad mixphase    "mixphase.csv:3: field 'phase': step 0 is decode here but prefill" 'step,layer,expert,tokens,phase\n0,0,0,5,prefill\n0,0,1,5,decode\n'
bad headeronly  "no data rows"                                'step,layer,expert,tokens\n'

# out of range for the model preset: mixtral has 8 experts
printf 'step,layer,expert,tokens\n0,0,8,5\n' >"$T/range.csv"
expect_status 2 mt import "$T/range.csv" --into "$T/db" --run range --model mixtral-8x7b
expect_grep "$T/err" "expert 8 is out of range for mixtral-8x7b \\(8 experts\\)"
printf 'step,layer,expert,tokens\n0,32,0,5\n' >"$T/range2.csv"
expect_status 2 mt import "$T/range2.csv" --into "$T/db" --run range2 --model mixtral-8x7b
expect_grep "$T/err" "layer 32 is out of range"

# a run name that exists already
expect_status 2 mt import "$good" --into "$T/db" --run base
expect_grep "$T/err" "already exists"
# unknown model, missing file, bad option value
expect_status 2 mt import "$good" --into "$T/db" --run x --model nosuch
expect_grep "$T/err" "unknown preset 'nosuch'"
# an input that does not exist is bad input (2), as in every command; one
# that cannot be read (permissions, I/O) is a runtime failure (1)
expect_status 2 mt import "$T/nosuchfile.csv" --into "$T/db" --run y
expect_grep "$T/err" "cannot open '.*nosuchfile.csv'"
# --ranks-per-node puts an EP layout on nodes: with none (no --ranks, no
# --model, none in the data) it is refused, not dropped
expect_status 2 mt import "$good" --into "$T/db" --run z --ranks-per-node 2
expect_grep "$T/err" "--ranks-per-node 2: the run has no EP layout to put on nodes"
expect_status 2 mt import "$good" --into "$T/db" --run z --ranks 0
expect_grep "$T/err" "--ranks: 0 is out of range"
expect_status 2 mt import "$good" --into "$T/db" --run z --ranks 1 --slots 1
expect_grep "$T/err" "cannot hold"
# top-k routing needs k experts: a run the readers would refuse is never written
nexp=$(sqlite3 "$T/db" "SELECT max(experts) FROM runs")
expect_status 2 mt import "$good" --into "$T/db" --run z --topk $((nexp + 1))
expect_grep "$T/err" "^moetrace import: .*good.*: run 'z': top-$((nexp + 1)) routing of $nexp experts is impossible"
printf '{"moetrace": 1, "layers": 1, "experts": 2, "topk": 3}\n{"step": 0, "layer": 0, "counts": [1, 2]}\n' >"$T/k.jsonl"
expect_status 2 mt import "$T/k.jsonl" --into "$T/db" --run zk
expect_grep "$T/err" "k.jsonl: run 'zk': top-3 routing of 2 experts is impossible"

[ "$(sqlite3 "$T/db" "SELECT count(*) FROM counts; SELECT count(*) FROM runs")" = "$sum_before" ] || fail "db changed"
sqlite3 "$T/db" "PRAGMA integrity_check" | grep -qx ok || fail "integrity"

# a failed import into a new file leaves no file behind
expect_status 2 mt import "$T/negative.csv" --into "$T/new.db" --run n
[ ! -e "$T/new.db" ] || fail "failed import left $T/new.db"
exit 0
