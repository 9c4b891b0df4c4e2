# examples/static_placement.sh runs end to end on a small trace.
. "$(dirname "$0")/lib.sh"
python3 - "$T/t.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("step,layer,expert,tokens\n")
    for s in range(10):
        for l in range(26):
            for e in range(64):
                f.write("%d,%d,%d,%d\n" % (s, l, e, 1 + (e * 37 + l * 11 + s) % 97))
PY
expect_status 0 env MOETRACE="$MOETRACE" sh "$MOETRACE_TOP/examples/static_placement.sh" \
	"$T/t.csv" deepseek-v2-lite 8 10 "$T/ex"
expect_grep "$T/out" "^moves: 0$"
for f in expert_map.json init_expert_location.json moe_load_balancer.yaml; do
	[ -s "$T/ex/$f" ] || fail "no $f"
done
