#!/bin/sh
# The Python package builds offline with its standard-library backend: the
# wheel holds every module with correct RECORD hashes, imports from where it
# is unpacked, records a step through libmoetrace; pip (where present)
# installs it with no index at all.
. "$(dirname "$0")/lib.sh"
py=$MOETRACE_TOP/collector/python
[ -n "${MOETRACE_LIB:-}" ] || skip "no libmoetrace.so in the build (MOETRACE_LIB unset)"
mkdir -p "$T/wheel" "$T/unpacked"
expect_status 0 python3 - "$py" "$T/wheel" "$T/unpacked" <<'PY'
import base64, hashlib, os, sys, zipfile
src, out, dest = sys.argv[1:4]
sys.path.insert(0, os.path.join(src, "build_backend"))
import moetrace_build as b
assert b.get_requires_for_build_wheel() == []
name = b.build_wheel(out)
z = zipfile.ZipFile(os.path.join(out, name))
names = set(z.namelist())
mods = {f"moetrace/{n}" for n in os.listdir(os.path.join(src, "moetrace")) if n.endswith(".py")}
assert mods <= names, mods - names
record = [l.split(",") for l in z.read(name.split("-py3")[0] + ".dist-info/RECORD").decode().splitlines()]
for arc, h, size in record:
    if not h:
        continue
    data = z.read(arc)
    want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert h == want and int(size) == len(data), arc
z.extractall(dest)
print(name)
PY
expect_grep "$T/out" '^moetrace-[0-9.]+-py3-none-any\.whl$'
cd "$T"
expect_status 0 env PYTHONPATH="$T/unpacked" python3 -c '
import moetrace, sys
assert moetrace.__file__.startswith(sys.argv[1]), moetrace.__file__
with moetrace.Recorder(sys.argv[1] + "/t.db", "py", layers=1, experts=4, topk=1) as r:
    r.step(0, [[1, 2, 3, 4]])
' "$T/unpacked"
expect_status 0 mt info "$T/unpacked/t.db"
expect_grep "$T/out" 'steps +1 \(0 \.\. 0\)'
if python3 -m pip --version >/dev/null 2>&1; then
	expect_status 0 python3 -m pip install --no-index --no-cache-dir --target "$T/pip" "$py"
	[ -f "$T/pip/moetrace/recorder.py" ] || fail "pip did not install the package"
fi
exit 0
