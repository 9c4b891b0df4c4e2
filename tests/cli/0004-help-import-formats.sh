#!/bin/sh
# `moetrace help` names, on import's line, every trace format that
# `import --format` reads (the help is where a new user looks first).
. "$(dirname "$0")/lib.sh"
expect_status 0 mt help
grep -E '^  import ' "$T/out" >"$T/line" || fail "no import line in 'moetrace help'"
expect_status 0 mt import --help
formats=$(sed -n 's/.*\[--format auto|\([a-z|]*\)\].*/\1/p' "$T/out" | tr '|' ' ')
[ -n "$formats" ] || fail "no --format list in 'moetrace import --help'"
n=0
for f in $formats; do
	case $f in
	csv) name=CSV ;;
	jsonl) name="JSON lines" ;;
	megatron) name=Megatron-LM ;;
	trtllm) name=TensorRT-LLM ;;
	sglang) name=SGLang ;;
	*) fail "import --format $f: no name known to this test (add it)" ;;
	esac
	expect_grep "$T/line" "$name"
	n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "only $n formats in 'moetrace import --help'"
