"""Import SGLang expert-distribution dumps (.pt) into a moetrace trace.

    python3 -m moetrace.sglang_dump DUMP.pt [DUMP.pt ...] --into trace.db [--run NAME]
            [--model PRESET] [--ranks R] [--replicated N] [--keep-dense]
            [--no-torch | --torch] [--moetrace BIN]
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

Counting: SGLang's default gatherer (``_SelectExpertsSinglePassGatherer``)
counts the top-k ids each rank selects.  Without DP attention or DeepEP
every tensor-parallel rank selects experts for the same tokens, so a
``stat`` dump (all-reduced over the ranks) counts each token tp_size times
and so does the sum of the ranks' ``per_pass`` dumps; ``--replicated N``
says so, and each token is then counted once (``stat`` counts divided by
N, refused unless every count is a multiple of N; ``per_pass``: the N
ranks' records must be equal and one is kept).

The dump is converted to moetrace's JSON lines and loaded with
``moetrace import --format jsonl`` (all or nothing); the run's source then
names the dumps.  A dump that is not what SGLang writes (truncated,
corrupt -- the zip's CRCs are checked even when torch reads it --, or of
another shape) exits 2 with one message naming the file.  A small reader
of torch's zip format (standard library only) rebuilds the tensors; it
checks every CRC and member and allows no pickle global but torch's tensor
and storage rebuilders.  torch.load (which checks neither CRCs nor member
flags: a flipped attribute bit makes it read a storage as empty) is used,
with weights_only so that no code in the pickle runs, only for content
that reader does not know, or with --torch.
"""
import argparse
import array
import collections
import importlib.util
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zipfile

U32_MAX = 2**32 - 1
I64_MAX = 2**63 - 1

__all__ = ["load_dump", "convert", "main"]


class DumpError(Exception):
    """A dump that is not what SGLang writes: the message names the file and field."""


class _Unknown(DumpError):
    """Content the standard-library reader does not know (a pickle global or
    storage type): torch.load may still read it."""


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
            raise _Unknown("%s: storage type torch.%s is not one an expert-distribution "
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
    if not isinstance(storage, _Storage) or not isinstance(offset, int) or \
            len(size) != len(stride) or \
            any(not isinstance(v, int) or v < 0 for v in size + stride + (offset,)):
        raise ValueError("a tensor with a malformed size, stride or offset")
    n = 1
    for s in size:
        n *= s
    if n and offset + sum((s - 1) * st for s, st in zip(size, stride)) >= len(storage.values):
        raise ValueError("a tensor of %s reaches past its storage of %d values"
                         % (list(size), len(storage.values)))
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
        raise _Unknown("%s: the pickle refers to %s.%s, which an expert-distribution dump "
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


def _open_zip(path):
    """The dump as a checked zip: every member's CRC-32 is verified, so a
    flipped bit in a count is refused rather than imported (torch.load does
    not check them)."""
    if not os.path.exists(path):
        raise OSError("cannot open '%s': No such file or directory" % path)
    try:
        zf = zipfile.ZipFile(path)
    except OSError as e:
        raise OSError("cannot open '%s': %s" % (path, e.strerror or e))
    except Exception as e:  # BadZipFile, NotImplementedError for a flipped version, ...
        raise DumpError("%s: not a torch zip archive (%s)" % (path, e or type(e).__name__))
    try:
        bad = zf.testzip()
    except Exception as e:
        zf.close()
        raise DumpError("%s: corrupt zip archive (%s)" % (path, e))
    if bad is not None:
        zf.close()
        raise DumpError("%s: corrupt zip archive (bad CRC-32 for '%s')" % (path, bad))
    names = [zi.filename for zi in zf.infolist()]
    for zi in zf.infolist():
        # a member marked as a directory is read as empty by torch's own reader
        if zi.external_attr & 0x10 or zi.is_dir() or names.count(zi.filename) > 1:
            zf.close()
            raise DumpError("%s: corrupt zip archive (member '%s' is a directory or repeated)"
                            % (path, zi.filename))
    return zf


def _load_zip(path):
    zf = _open_zip(path)
    with zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
        if not pkl:
            raise DumpError("%s: no data.pkl in the archive" % path)
        prefix = pkl[0][:-len("data.pkl")]
        with zf.open(pkl[0]) as f:
            try:
                return _Unpickler(f, zf, prefix, path).load()
            except DumpError:
                raise
            except Exception as e:  # whatever a corrupt pickle makes the unpickler do
                raise DumpError("%s: malformed pickle: %s" % (path, e or type(e).__name__))


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
    """The dump's content with tensors as Tensor.  The standard-library
    reader reads it (zip CRCs checked, only torch's tensor and storage
    rebuilders allowed); torch.load is used only for content that reader
    does not know, when torch is installed and use_torch is not False
    (True: torch.load always)."""
    if use_torch is not True:
        try:
            return _load_zip(path)
        except _Unknown as e:
            if use_torch is False:
                raise
            unknown = e
    # the zip checked (CRCs, entries) before torch is imported: a damaged
    # dump is refused without the seconds torch takes to import
    _open_zip(path).close()
    try:
        import torch
    except ImportError:
        if use_torch is True:
            raise
        raise unknown from None
    try:
        # weights_only: tensors, containers and numbers, never code from the pickle
        obj = torch.load(path, map_location="cpu", weights_only=True)
        return _from_torch(obj)
    except TypeError as e:
        if "weights_only" in str(e):
            raise DumpError("%s: this torch (%s) cannot load a pickle safely (no weights_only); "
                            "read it without --torch" % (path, torch.__version__))
        raise DumpError("%s: torch.load failed: %s" % (path, e))
    except Exception as e:
        raise DumpError("%s: torch.load failed: %s" % (path, e or type(e).__name__))


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


def convert(dumps, keep_dense=False, replicated=None):
    """dumps: [(path, content)].  Returns (steps, layers, experts,
    first_layer, phy2log rows or None, ranks seen): steps is a list of
    (step, counts[layer][expert]).  replicated=N: the dumps come from N
    ranks that each counted every token; each token is counted once."""
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
        if replicated:
            for i, v in enumerate(t.values):
                if v % replicated:
                    raise DumpError("%s: field 'logical_count': %d (step %d, layer %d, expert "
                                    "%d) is not a multiple of --replicated %d: the ranks did not "
                                    "all count the same tokens" % (path, v, i // per,
                                                                  i % per // E, i % E,
                                                                  replicated))
            t = Tensor(t.shape, [v // replicated for v in t.values])
        # SGLang's buffer is circular: slots never filled are all zero (a
        # forward pass routes at least one token), so they are dropped
        steps = [(s, [t.values[s * per + l * E:s * per + (l + 1) * E] for l in range(L)])
                 for s in range(n) if any(t.values[s * per:(s + 1) * per])]
        if not steps:
            raise DumpError("%s: field 'logical_count': every step is empty" % path)
    else:
        acc, reps = {}, {}
        L = P = None
        for path, d in passes:
            m = _tensor(d, "last_physical_to_logical_map", path, (2,))
            if L is None:
                L, P = m.shape
                p2l = [m.values[l * P:(l + 1) * P] for l in range(L)]
                E = max(max(row) for row in p2l) + 1 if L and P else 0
                if not L or not P or E > P:
                    raise DumpError("%s: field 'last_physical_to_logical_map': shape %s with "
                                    "expert ids up to %d" % (path, [L, P], E - 1))
                for l, row in enumerate(p2l):
                    missing = set(range(E)) - set(row)
                    if missing:
                        raise DumpError("%s: field 'last_physical_to_logical_map': layer %d "
                                        "puts logical expert %d on no slot" %
                                        (path, l, min(missing)))
            elif m.shape != (L, P):
                raise DumpError("%s: field 'last_physical_to_logical_map': shape %s, %s has %s"
                                % (path, list(m.shape), passes[0][0], [L, P]))
            elif m.values != [v for row in p2l for v in row]:
                raise DumpError("%s: field 'last_physical_to_logical_map': differs from %s's"
                                % (path, passes[0][0]))
            if not isinstance(d["records"], list):
                raise DumpError("%s: field 'records': not a list" % path)
            for i, r in enumerate(d["records"]):
                where = "%s: records[%d]" % (path, i)
                fp = r.get("forward_pass_id") if isinstance(r, dict) else None
                if not isinstance(fp, int) or isinstance(fp, bool):
                    raise DumpError("%s: field 'forward_pass_id': missing" % where)
                if fp < 0 or fp > I64_MAX:
                    raise DumpError("%s: field 'forward_pass_id': %d is out of range" % (where, fp))
                g = _tensor(r, "global_physical_count", where, (2,))
                if g.shape != (L, P):
                    raise DumpError("%s: field 'global_physical_count': shape %s, the map has %s"
                                    % (where, list(g.shape), [L, P]))
                if isinstance(r.get("rank"), int):
                    ranks.add(r["rank"])
                if replicated:
                    seen = reps.setdefault(fp, [])
                    if seen and seen[0][1] != g.values:
                        raise DumpError("%s: field 'global_physical_count' of forward pass %d "
                                        "differs from %s's: with --replicated every rank must "
                                        "have counted the same tokens" % (where, fp, seen[0][0]))
                    seen.append((where, g.values))
                    if len(seen) > 1:
                        continue
                cur = acc.setdefault(fp, [[0] * P for _ in range(L)])
                for l in range(L):
                    row, src = cur[l], g.values[l * P:(l + 1) * P]
                    for s in range(P):
                        row[s] += src[s]
        if replicated:
            for fp, seen in sorted(reps.items()):
                if len(seen) != replicated:
                    raise DumpError("%s: forward pass %d is in %d of the --replicated %d ranks' "
                                    "records" % (seen[0][0].split(": records")[0], fp,
                                                 len(seen), replicated))
        steps = []
        for fp in sorted(acc):
            counts = [[0] * E for _ in range(L)]
            for l in range(L):
                for s, c in enumerate(acc[fp][l]):
                    counts[l][p2l[l][s]] += c
            steps.append((fp, counts))
        if not steps:
            raise DumpError("%s: no records" % passes[0][0])
    for s, counts in steps:
        for l, row in enumerate(counts):
            for e, c in enumerate(row):
                if c > U32_MAX:
                    raise DumpError("%s: step %d, layer %d, expert %d: %d tokens do not fit in "
                                    "32 bits" % (" + ".join(p for p, _ in dumps), s, l, e, c))
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


def _source(dumps):
    """The run's source: the dumps, within the 255 bytes a run's source holds."""
    src = "import sglang " + " ".join(dumps)
    if len(src.encode()) > 255:
        src = "import sglang %s and %d more" % (dumps[0], len(dumps) - 1)
    b = src.encode()
    if len(b) > 255:
        src = b[:252].decode(errors="ignore") + "..."
    return src


def _set_source(db, run, source):
    """Names the dumps as the run's source in place of the temporary file
    `moetrace import` read.  Returns an error message or None."""
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            with con:
                cur = con.execute("UPDATE runs SET source = ? WHERE name = ?", (source, run))
                if cur.rowcount != 1:
                    return "run '%s' not found" % run
        finally:
            con.close()
    except sqlite3.Error as e:
        return str(e)
    return None


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
    ap.add_argument("--replicated", type=int, metavar="N",
                    help="the dumps come from N ranks that each counted every token (tensor "
                    "parallelism without DP attention or DeepEP): count each token once")
    ap.add_argument("--keep-dense", action="store_true",
                    help="keep leading all-zero (dense) layers")
    ap.add_argument("--no-torch", action="store_true",
                    help="never fall back to torch.load for content the standard-library "
                    "reader does not know")
    ap.add_argument("--torch", action="store_true",
                    help="read the dumps with torch.load (zip CRCs still checked)")
    ap.add_argument("--moetrace", metavar="BIN", help="moetrace binary (default: $MOETRACE, "
                    "the repository's, or PATH)")
    a = ap.parse_args(argv)
    prog = "moetrace sglang_dump"
    if a.replicated is not None and a.replicated < 1:
        print("%s: --replicated %d: not a positive rank count" % (prog, a.replicated),
              file=sys.stderr)
        return 2
    if a.torch:
        if a.no_torch:
            print("%s: --torch and --no-torch contradict each other" % prog, file=sys.stderr)
            return 2
        if importlib.util.find_spec("torch") is None:
            print("%s: --torch: torch is not installed" % prog, file=sys.stderr)
            return 2
    try:
        how = False if a.no_torch else True if a.torch else None
        dumps = [(p, load_dump(p, how)) for p in a.dumps]
        try:
            steps, layers, experts, first, p2l, nranks = convert(dumps, a.keep_dense,
                                                                  a.replicated)
        except DumpError:
            raise
        except Exception as e:  # a shape the checks above did not foresee
            raise DumpError("%s: cannot convert: %s" % (" + ".join(a.dumps),
                                                       e or type(e).__name__))
    except OSError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 2
    except DumpError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 2
    if a.jsonl:
        try:
            with open(a.jsonl, "w") as f:
                _write_jsonl(f, steps, layers, experts, first)
        except OSError as e:
            print("%s: cannot write '%s': %s" % (prog, a.jsonl, e.strerror or e), file=sys.stderr)
            return 1
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
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, errors="replace")
        except OSError as e:
            print("%s: cannot run '%s': %s" % (prog, cmd[0], e), file=sys.stderr)
            return 1
        # what the import says names the dumps, not the temporary files
        names = " + ".join(a.dumps)
        for stream, text in ((sys.stdout, p.stdout), (sys.stderr, p.stderr)):
            text = text.replace(jl, "%s (converted)" % names)
            if p2l is not None:
                text = text.replace(mp, "%s (map)" % names)
            stream.write(text)
        if p.returncode:
            return p.returncode
    err = _set_source(a.into, name, _source(a.dumps))
    if err:
        print("%s: cannot name the dumps as run '%s''s source in '%s': %s"
              % (prog, name, a.into, err), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
