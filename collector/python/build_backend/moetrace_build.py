"""A PEP 517 build backend for the moetrace Python package, standard library only.

pip runs it in an isolated environment with nothing installed (pyproject.toml
lists no build requirements), so `pip install collector/python` works on a
machine without network access.  It builds a pure-Python wheel of the
`moetrace` package and a source archive; nothing is compiled (the package
loads libmoetrace.so with ctypes at run time).
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

NAME = "moetrace"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version():
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        m = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("pyproject.toml: no version")
    return m.group(1)


def _metadata():
    return ("Metadata-Version: 2.1\n"
            f"Name: {NAME}\nVersion: {_version()}\n"
            "Summary: Record MoE expert heat from Python engines into a moetrace trace\n"
            "Requires-Python: >=3.8\n")


def _package_files():
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            yield os.path.join(pkg, name), f"{NAME}/{name}"


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"{arcname},sha256={digest.decode()},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    ver = _version()
    dist = f"{NAME}-{ver}.dist-info"
    wheel = f"{NAME}-{ver}-py3-none-any.whl"
    entries = []
    for path, arc in _package_files():
        with open(path, "rb") as f:
            entries.append((arc, f.read()))
    entries.append((f"{dist}/METADATA", _metadata().encode()))
    entries.append((f"{dist}/WHEEL", (
        "Wheel-Version: 1.0\nGenerator: moetrace_build\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n").encode()))
    record = [_record_line(a, d) for a, d in entries] + [f"{dist}/RECORD,,"]
    entries.append((f"{dist}/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            info = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return wheel


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist = f"{NAME}-{_version()}.dist-info"
    os.makedirs(os.path.join(metadata_directory, dist), exist_ok=True)
    with open(os.path.join(metadata_directory, dist, "METADATA"), "w",
              encoding="utf-8") as f:
        f.write(_metadata())
    return dist


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{_version()}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        files = [(os.path.join(HERE, "pyproject.toml"), "pyproject.toml"),
                 (os.path.join(HERE, "README.md"), "README.md"),
                 (os.path.abspath(__file__), "build_backend/moetrace_build.py")]
        files += list(_package_files())
        for path, arc in files:
            t.add(path, arcname=f"{base}/{arc}")
        pkg_info = _metadata().encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        t.addfile(info, io.BytesIO(pkg_info))
    return name
