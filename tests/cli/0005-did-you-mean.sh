#!/bin/sh
# Misspelt names get one line with the closest choice, exit 2 and no usage
# dump: commands, long options (unknown, ambiguous, missing value), model
# presets (and the model's own spelling, accepted), algorithms, links,
# chart kinds, formats.  A name nothing is close to gets no suggestion.
. "$(dirname "$0")/lib.sh"

one_line() { # regex cmd...
	re=$1; shift
	expect_status 2 "$@"
	expect_grep "$T/err" "$re"
	[ "$(wc -l <"$T/err")" -eq 1 ] || { cat "$T/err" >&2; fail "'$*': more than one line on stderr"; }
}
one_line "^moetrace: 'balanec' is not a moetrace command; did you mean 'balance'\?$" mt balanec x.db
one_line "^moetrace: 'zzzzzz' is not a moetrace command \(see 'moetrace help'\)$" mt zzzzzz
one_line "^moetrace replay: unknown option '--intreval'; did you mean '--interval'\?$" \
	mt replay --intreval 5 x.db
one_line "^moetrace replay: option '--interval' needs a value$" mt replay x.db --interval
one_line "^moetrace place: unknown option '--algos'; did you mean '--algo'\?$" mt place --algos keel x.db
one_line "^moetrace compare: unknown option '--algoz'; did you mean '--algos'\?$" mt compare --algoz keel x.db
one_line "^moetrace report: unknown option '--outptu'; did you mean '--output'\?$" mt report --outptu d x.db
one_line "^moetrace info: option '--json' takes no value$" mt info --json=1 x.db
one_line "^moetrace info: unknown option '-Z' \(see 'moetrace info --help'\)$" mt info -Z x.db
one_line "^moetrace sql: unknown option '--qqqqqq' \(see 'moetrace sql --help'\)$" mt sql --qqqqqq x.db
one_line "^moetrace top: unknown option '--snapshto'; did you mean '--snapshot'\?$" mt top --snapshto x.db
one_line "unknown model 'deepsek-v3'; did you mean 'deepseek-v3'\?" mt gen --model deepsek-v3 "$T/a.db"
one_line "unknown preset 'qwen3-235'; did you mean 'qwen3-235b-a22b'\?" mt import --model qwen3-235 --into "$T/a.db" x.csv
one_line "unknown algorithm 'kel'; did you mean 'keel'\?" mt place --algo kel x.db
one_line "unknown algorithm 'flashbl'; did you mean 'flashlb'\?" mt compare --algos eplb,flashbl x.db
one_line "unknown link 'nvlnk4'; did you mean 'nvlink4'\?" mt replay --link nvlnk4 x.db
one_line "unknown chart kind 'heatmpa'; did you mean 'heatmap'\?" mt render x.db heatmpa
one_line "'vllm_ascend' is not vllm-ascend, sglang or trtllm; did you mean 'vllm-ascend'\?" \
	mt place --format vllm_ascend x.db
[ ! -e "$T/a.db" ] || fail "a refused command created a database"

# the model's own spelling is the preset
expect_status 0 mt gen --model DeepSeek-V3 --steps 2 -q "$T/b.db"
expect_status 0 mt gen --model deepseekv3 --steps 2 -q --run second "$T/b.db"
expect_status 0 mt info "$T/b.db"
[ "$(grep -c 'model deepseek-v3' "$T/out")" -eq 2 ] || { cat "$T/out"; fail "folded names did not pick the deepseek-v3 preset"; }
