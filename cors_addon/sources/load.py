"""Open any recording the CLI is given, auto-detecting its format.

HAR (Chrome, Firefox, mitmproxy ``savehar``/``hardump``, proxies), ``.zhar`` (zlib),
gzip'd HAR, and mitmproxy ``.mitm`` flow files are sniffed from their first bytes, not
their names: people save flow dumps as ``flows.har`` and HARs without an extension.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

from cors_addon.errors import RecordingError
from cors_addon.exchange import Exchange
from cors_addon.sources.har import read_har_data

RECORDING_SUFFIXES = (".har", ".zhar", ".har.gz", ".mitm", ".flows", ".dump")
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
)


@dataclass(slots=True)
class Recording:
    path: str
    format: str
    exchanges: list[Exchange]
    pages: list[dict] = field(default_factory=list)
    har: dict | None = None
    flows: list[Any] | None = None
    warnings: list[str] = field(default_factory=list)


def expand_paths(paths: list[str]) -> list[str]:
    """Directories stand for the recordings directly inside them."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(
                os.path.join(path, name) for name in os.listdir(path)
                if name.lower().endswith(RECORDING_SUFFIXES) and os.path.isfile(os.path.join(path, name))
            )
            if not found:
                raise RecordingError(path, "is a directory with no recordings (*.har, *.zhar, *.mitm) in it")
            out.extend(found)
        else:
            out.append(path)
    return out


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise RecordingError(path, "no such file") from None
    except IsADirectoryError:
        raise RecordingError(path, "is a directory") from None
    except PermissionError:
        raise RecordingError(path, "cannot be read: permission denied") from None
    except OSError as exc:
        raise RecordingError(path, f"cannot be read: {exc.strerror or exc}") from None


def _decompress(path: str, raw: bytes, warnings: list[str]) -> bytes:
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise RecordingError(path, f"gzip data is damaged ({exc})") from None
    if raw[:1] == b"\x78" and raw[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
        try:
            return zlib.decompress(raw)
        except zlib.error as exc:
            raise RecordingError(path, f"zlib (.zhar) data is damaged ({exc})") from None
    return raw


def _to_utf8(path: str, raw: bytes, warnings: list[str]) -> bytes:
    """UTF-16 and UTF-32 HARs (PowerShell's ``>`` writes UTF-16) as UTF-8 bytes; a
    UTF-8 BOM removed. Recognised by their BOM, or by the NULs around the first ``{``."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            encoding = codec
            break
    else:
        if raw.startswith(b"\xef\xbb\xbf"):
            return raw[3:]
        if len(raw) >= 4 and raw[0] and not raw[1] and not raw[2] and not raw[3]:
            encoding = "utf-32-le"
        elif len(raw) >= 4 and not raw[0] and not raw[1] and not raw[2] and raw[3]:
            encoding = "utf-32-be"
        elif len(raw) >= 2 and raw[0] and not raw[1]:
            encoding = "utf-16-le"
        elif len(raw) >= 2 and not raw[0] and raw[1]:
            encoding = "utf-16-be"
        else:
            return raw
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        warnings.append(f"damaged {encoding.upper()} at byte {exc.start}; undecodable bytes replaced")
        text = raw.decode(encoding, "replace")
    return text.removeprefix("\ufeff").encode("utf-8", "surrogatepass")


def load_recording(path: str, *, keep_source: bool = True) -> Recording:
    """``keep_source=False``: the caller needs no ``Recording.har`` (the original JSON,
    for ``--annotate``), so a HAR may be read by the faster path (``har_fast``)."""
    warnings: list[str] = []
    raw = _to_utf8(path, _decompress(path, _read_bytes(path), warnings), warnings)
    head = raw.lstrip()[:64]
    if not head:
        raise RecordingError(path, "is empty")
    if head.startswith((b"{", b"[")):
        return _load_har(path, raw, warnings, keep_source)
    if head.startswith(b"version https://git-lfs"):
        raise RecordingError(path, "is a Git LFS pointer, not the recording itself (run git lfs pull)")
    if head[:1].isdigit() and b":" in head[:12]:
        return _load_mitm(path)
    if head.startswith(b"<"):
        raise RecordingError(path, "looks like HTML or XML, not a HAR or mitmproxy flow file")
    if head[:1] in b'"-0123456789' or head.startswith((b"null", b"true", b"false")):
        return _load_har(path, raw, warnings, keep_source)
    raise RecordingError(path, "is neither HAR (JSON) nor a mitmproxy flow file")


def _load_har(path: str, raw: bytes, warnings: list[str], keep_source: bool = True) -> Recording:
    """Undecodable bytes are kept as lone surrogates (``surrogateescape``), so that
    ``--annotate`` writes them back byte for byte; the HAR reader hands the engine
    U+FFFD in their place."""
    if not keep_source:
        from cors_addon.sources import har_fast

        har = har_fast.read_har_fast(path, raw)
        if har is not None:
            warnings.extend(har.skipped)
            return Recording(path, "har", har.exchanges, har.pages, har=None, warnings=warnings)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        warnings.append(f"not valid UTF-8 at byte {exc.start}; undecodable bytes are shown as U+FFFD "
                        "(--annotate keeps them as they were)")
        text = raw.decode("utf-8", "surrogateescape")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{'"):
            raise RecordingError(path, "looks like a Python repr() of a HAR, not JSON") from None
        where = f"line {exc.lineno} column {exc.colno}"
        if exc.pos >= len(text.rstrip()) - 1:
            raise RecordingError(path, f"is truncated: the JSON ends early ({where})") from None
        raise RecordingError(path, f"is not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise RecordingError(path, "cannot be read: the JSON is nested too deeply") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise RecordingError(path, "cannot be read: a JSON number has more than 4300 digits") from None
        raise RecordingError(path, f"is not valid JSON: {exc}") from None
    har = read_har_data(path, data)
    warnings.extend(har.skipped)
    return Recording(path, "har", har.exchanges, har.pages, har=data, warnings=warnings)


def _load_mitm(path: str) -> Recording:
    try:
        from mitmproxy import exceptions, io
    except ImportError:
        raise RecordingError(path, "is a mitmproxy flow file; install mitmproxy to read it") from None
    from cors_addon.sources.flows import flow_to_exchange, is_http_flow

    flows: list[Any] = []
    try:
        with open(path, "rb") as fh:
            for flow in io.FlowReader(fh).stream():
                if is_http_flow(flow):
                    flows.append(flow)
    except exceptions.FlowReadException as exc:
        if not flows:
            raise RecordingError(path, f"is not a readable mitmproxy flow file ({exc})") from None
        warnings = [f"flow file damaged after {len(flows)} flows ({exc}); the rest was skipped"]
    else:
        warnings = []
    exchanges = [flow_to_exchange(flow, i) for i, flow in enumerate(flows)]
    return Recording(path, "mitm", exchanges, flows=flows, warnings=warnings)
