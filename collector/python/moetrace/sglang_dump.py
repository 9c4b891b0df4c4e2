"""Import SGLang expert-distribution dumps (.pt) into a moetrace trace.

    python3 -m moetrace.sglang_dump DUMP.pt [DUMP.pt ...] --into trace.db [--run NAME]
            [--model PRESET] [--ranks R] [--keep-dense] [--moetrace BIN]
    python3 -m moetrace.sglang_dump DUMP.pt ... --jsonl OUT.jsonl

SGLang's ExpertDistributionRecorder (python/sglang/srt/eplb/
expert_distribution.py, SGLANG_EXPERT_DISTRIBUTION_RECORDER_DIR) saves
torch pickles:

- mode ``stat``: ``{"rank": 0, "logical_count": int tensor [steps, layers,
  experts], ...}``, all-reduced over ranks and written by rank 0 only;
- mode ``per_pass``: one file per rank, ``{"records": [{"forward_pass_id",
  "rank", "gatherer_key", "global_physical_count": [layers, physical
  slots]}, ...], "last_physical_to_logical_map": [layers, physical slots]}``;
  each rank counts the tokens it routed, so ranks are summed per forward
  pass and slots are credited to the logical expert the map puts there.
  The map is also recorded as the run's deployed placement.

SGLang's layer axis is the model's (``num_hidden_layers``, dense layers
included, their rows all zero); leading all-zero layers are dropped and
recorded as the run's first model layer unless --keep-dense.

The dump is converted to moetrace's JSON lines and loaded with
``moetrace import --format jsonl`` (all or nothing).  torch is used to
read the pickle when it is installed; otherwise a small reader of the
torch zip format (standard library only) rebuilds the tensors.
"""
import argparse
import array
import collections
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile

__all__ = ["load_dump", "convert", "main"]


class DumpError(Exception):
    """A dump that is not what SGLang writes: the message names the file and field."""


class Tensor:
    """A tensor as nested shape + flat row-major values (ints or floats)."""

    def __init__(self, shape, values):
        self.shape = tuple(int(s) for s in shape)
        self.values = values

    def rows(self):
        """The values as nested lists."""
        def build(dim, off):
            if dim == len(self.shape):
                return self.values[off]
            step = 1
            for s in self.shape[dim + 1:]:
                step *= s
            return [build(dim + 1, off + i * step) for i in range(self.shape[dim])]
        if not self.shape:
            return self.values[0]
        return build(0, 0)


# ---- reading torch's zip format without torch --------------------------------------

_STORAGES = {
    "IntStorage": "i", "LongStorage": "q", "ShortStorage": "h", "CharStorage": "b",
    "ByteStorage": "B", "BoolStorage": "?", "FloatStorage": "f", "DoubleStorage": "d",
    "HalfStorage": "e",
}


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Storage:
    def __init__(self, kind, data, path):
        fmt = _STORAGES.get(kind.name)
        if fmt is None:
            raise DumpError("%s: storage type torch.%s is not one an expert-distribution "
                            "dump holds" % (path, kind.name))
        if fmt == "?":
            self.values = [b != 0 for b in data]
        elif fmt == "e":
            import struct
            self.values = [v[0] for v in struct.iter_unpack("<e", data)]
        else:
            a = array.array(fmt)
            if len(data) % a.itemsize:
                raise DumpError("%s: a torch.%s of %d bytes is truncated" %
                                (path, kind.name, len(data)))
            a.frombytes(data)
            if sys.byteorder != "little":
                a.byteswap()
            self.values = a


def _rebuild_tensor(storage, offset, size, stride, *unused):
    size = tuple(size)
    stride = tuple(stride)
    n = 1
    for s in size:
        n *= s
    contiguous, expect = True, 1
    for s, st in zip(reversed(size), reversed(stride)):
        if s > 1 and st != expect:
            contiguous = False
        expect *= s
    v = storage.values
    if contiguous:
        return Tensor(size, list(v[offset:offset + n]))
    out = []

    def walk(dim, off):
        if dim == len(size):
            out.append(v[off])
            return
        for i in range(size[dim]):
            walk(dim + 1, off + i * stride[dim])
    walk(0, offset)
    return Tensor(size, out)


def _rebuild_from_type(func, new_type, args, state):
    return func(*args)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, zf, prefix, path):
        super().__init__(f)
        self.zf, self.prefix, self.path = zf, prefix, path

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            return _rebuild_from_type
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module == "torch" and name == "Tensor":
            return Tensor
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise DumpError("%s: the pickle refers to %s.%s, which an expert-distribution dump "
                        "does not hold (read it with torch installed if it is legitimate)"
                        % (self.path, module, name))

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise DumpError("%s: unexpected persistent id %r" % (self.path, pid))
        _, kind, key, _location, _numel = pid[:5]
        try:
            data = self.zf.read(self.prefix + "data/" + str(key))
        except KeyError:
            raise DumpError("%s: storage %s is missing from the archive" % (self.path, key))
        return _Storage(kind, data, self.path)


def _load_zip(path):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DumpError("%s: not a torch zip archive (%s)" % (path, e))
    with zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
        if not pkl:
            raise DumpError("%s: no data.pkl in the archive" % path)
        prefix = pkl[0][:-len("data.pkl")]
        with zf.open(pkl[0]) as f:
            try:
                return _Unpickler(f, zf, prefix, path).load()
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
                raise DumpError("%s: malformed pickle: %s" % (path, e))


def _from_torch(obj):
    import torch
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        return Tensor(t.shape, t.reshape(-1).tolist())
    if isinstance(obj, dict):
        return {k: _from_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_from_torch(v) for v in obj]
    return obj


def load_dump(path, use_torch=None):
    """The dump's content with tensors as Tensor; torch reads it when
    installed (use_torch=None), else the standard-library reader."""
    if use_torch is None:
        try:
            import torch  # noqa: F401
            use_torch = True
        except ImportError:
            use_torch = False
    if use_torch:
        import torch
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except TypeError:  # torch < 1.13 has no weights_only
            obj = torch.load(path, map_location="cpu")
        except Exception as e:
            raise DumpError("%s: torch.load failed: %s" % (path, e))
        return _from_torch(obj)
    return _load_zip(path)


# ---- conversion --------------------------------------------------------------------------

def _tensor(obj, key, path, ndims):
    t = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(t, Tensor):
        raise DumpError("%s: field '%s': missing or not a tensor" % (path, key))
    if len(t.shape) not in ndims:
        raise DumpError("%s: field '%s': shape %s, expected %s dimensions" %
                        (path, key, list(t.shape), " or ".join(map(str, ndims))))
    for v in t.values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise DumpError("%s: field '%s': %r is not a non-negative integer count" %
                            (path, key, v))
    return t


def convert(dumps, keep_dense=False):
    """dumps: [(path, content)].  Returns (steps, layers, experts,
    first_layer, phy2log rows or None, ranks seen): steps is a list of
    (step, counts[layer][expert])."""
    stats = [(p, d) for p, d in dumps if isinstance(d, dict) and "logical_count" in d]
    passes = [(p, d) for p, d in dumps if isinstance(d, dict) and "records" in d]
    for p, d in dumps:
        if not (isinstance(d, dict) and ("logical_count" in d or "records" in d)):
            raise DumpError("%s: neither a 'stat' dump (logical_count) nor a 'per_pass' dump "
                            "(records)" % p)
    if stats and passes:
        raise DumpError("%s and %s: a 'stat' and a 'per_pass' dump cannot be mixed" %
                        (stats[0][0], passes[0][0]))
    if len(stats) > 1:
        raise DumpError("%s: 'stat' dumps are already summed over ranks; give one" % stats[1][0])
    p2l, ranks = None, set()
    if stats:
        path, d = stats[0]
        t = _tensor(d, "logical_count", path, (2, 3))
        if len(t.shape) == 2:
            t = Tensor((1,) + t.shape, t.values)
        n, L, E = t.shape
        per = L * E
        # SGLang's buffer is circular: slots never filled are all zero (a
        # forward pass routes at least one token), so they are dropped
        steps = [(s, [t.values[s * per + l * E:s * per + (l + 1) * E] for l in range(L)])
                 for s in range(n) if any(t.values[s * per:(s + 1) * per])]
        if not steps:
            raise DumpError("%s: field 'logical_count': every step is empty" % path)
    else:
        acc = {}
        L = P = None
        for path, d in passes:
            m = _tensor(d, "last_physical_to_logical_map", path, (2,))
            if L is None:
                L, P = m.shape
                p2l = [m.values[l * P:(l + 1) * P] for l in range(L)]
            elif m.shape != (L, P):
                raise DumpError("%s: field 'last_physical_to_logical_map': shape %s, %s has %s"
                                % (path, list(m.shape), passes[0][0], [L, P]))
            if not isinstance(d["records"], list):
                raise DumpError("%s: field 'records': not a list" % path)
            for i, r in enumerate(d["records"]):
                where = "%s: records[%d]" % (path, i)
                if not isinstance(r, dict) or not isinstance(r.get("forward_pass_id"), int):
                    raise DumpError("%s: field 'forward_pass_id': missing" % where)
                g = _tensor(r, "global_physical_count", where, (2,))
                if g.shape != (L, P):
                    raise DumpError("%s: field 'global_physical_count': shape %s, the map has %s"
                                    % (where, list(g.shape), [L, P]))
                if isinstance(r.get("rank"), int):
                    ranks.add(r["rank"])
                fp = r["forward_pass_id"]
                cur = acc.setdefault(fp, [[0] * P for _ in range(L)])
                for l in range(L):
                    row, src = cur[l], g.values[l * P:(l + 1) * P]
                    for s in range(P):
                        row[s] += src[s]
        E = max(max(row) for row in p2l) + 1
        steps = []
        for fp in sorted(acc):
            counts = [[0] * E for _ in range(L)]
            for l in range(L):
                for s, c in enumerate(acc[fp][l]):
                    counts[l][p2l[l][s]] += c
            steps.append((fp, counts))
        if not steps:
            raise DumpError("%s: no records" % passes[0][0])
    first = 0
    if not keep_dense:
        while first < L - 1 and all(not any(c[first]) for _, c in steps):
            first += 1
    steps = [(s, c[first:]) for s, c in steps]
    if p2l is not None:
        p2l = p2l[first:]
    return steps, L - first, E, first, p2l, len(ranks)


def _write_jsonl(f, steps, layers, experts, first_layer):
    f.write(json.dumps({"moetrace": 1, "layers": layers, "experts": experts,
                        "first_layer": first_layer}) + "\n")
    for step, counts in steps:
        f.write('{"step":%d,"counts":%s}\n' % (step, json.dumps(counts, separators=(",", ":"))))


def _find_moetrace(given):
    for cand in (given, os.environ.get("MOETRACE")):
        if cand:
            return cand
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.normpath(os.path.join(here, "..", "..", ".."))
    if os.access(os.path.join(top, "moetrace"), os.X_OK):
        return os.path.join(top, "moetrace")
    return shutil.which("moetrace") or "moetrace"


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m moetrace.sglang_dump",
        description="Import SGLang expert-distribution dumps (.pt) into a moetrace trace.")
    ap.add_argument("dumps", nargs="+", metavar="DUMP.pt")
    out = ap.add_mutually_exclusive_group(required=True)
    out.add_argument("--into", metavar="DB", help="database to import into")
    out.add_argument("--jsonl", metavar="FILE", help="only convert, to moetrace JSON lines")
    ap.add_argument("--run", help="run name (default: the first dump's base name)")
    ap.add_argument("--model", help="model preset (moetrace models)")
    ap.add_argument("--ranks", type=int, help="EP ranks (per_pass: default the ranks seen)")
    ap.add_argument("--keep-dense", action="store_true",
                    help="keep leading all-zero (dense) layers")
    ap.add_argument("--no-torch", action="store_true",
                    help="read the pickle without torch even when it is installed")
    ap.add_argument("--moetrace", metavar="BIN", help="moetrace binary (default: $MOETRACE, "
                    "the repository's, or PATH)")
    a = ap.parse_args(argv)
    prog = "moetrace sglang_dump"
    try:
        dumps = [(p, load_dump(p, False if a.no_torch else None)) for p in a.dumps]
        steps, layers, experts, first, p2l, nranks = convert(dumps, a.keep_dense)
    except OSError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 1
    except DumpError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 2
    if a.jsonl:
        with open(a.jsonl, "w") as f:
            _write_jsonl(f, steps, layers, experts, first)
        print("converted %d steps (%d layers x %d experts) to '%s'" %
              (len(steps), layers, experts, a.jsonl))
        return 0
    name = a.run or os.path.splitext(os.path.basename(a.dumps[0]))[0]
    with tempfile.TemporaryDirectory(prefix="moetrace-sglang.") as tmp:
        jl = os.path.join(tmp, "heat.jsonl")
        with open(jl, "w") as f:
            _write_jsonl(f, steps, layers, experts, first)
        cmd = [_find_moetrace(a.moetrace), "import", jl, "--format", "jsonl", "--into", a.into,
               "--run", name]
        if a.model:
            cmd += ["--model", a.model]
        ranks = a.ranks or (nranks if p2l is not None else 0)
        if ranks:
            cmd += ["--ranks", str(ranks)]
        if p2l is not None:
            mp = os.path.join(tmp, "map.json")
            with open(mp, "w") as f:
                json.dump({"physical_to_logical_map": p2l}, f)
            cmd += ["--deployed", mp]
        try:
            return subprocess.call(cmd)
        except OSError as e:
            print("%s: cannot run '%s': %s" % (prog, cmd[0], e), file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
