"""Reading the JSON files the runner keeps or is given, with one clear line for every fault.

Files come from other shells and other tools: PowerShell's ``>`` writes UTF-16 with a byte-order
mark, editors add a UTF-8 one. Those are read; anything else that is not UTF-8 text, or not JSON,
is an error naming the file and how to fix it.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from runner.errors import RunnerError

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class JsonFileError(RunnerError):
    """A JSON file could not be read or decoded; the message names the file."""


def decode_text(data: bytes, path: Path, fix: str = "save it again as UTF-8") -> str:
    """UTF-8 (with or without a BOM) or UTF-16 with a BOM; anything else is a JsonFileError."""
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise JsonFileError(
            f"{path} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); {fix}"
        ) from None


def read_json(path: Path, fix: str) -> Any:
    """The parsed document; ``fix`` says how to make the file again if it is broken.

    FileNotFoundError propagates, so callers can say what a missing file means.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise JsonFileError(f"cannot read {path}: {err.strerror or err}") from None
    text = decode_text(data, path, fix)
    if not text.strip():
        raise JsonFileError(f"{path} is empty; {fix}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise JsonFileError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); {fix}"
        ) from None


def write_json(path: Path, data: Any) -> None:
    """Write then rename, so a reader never sees a half-written file."""
    _write_atomic(path, json.dumps(data, indent=2, sort_keys=True).encode())


def write_gzip_json(path: Path, data: Any) -> None:
    """Compact JSON, gzipped (a cache of a million task times is a few MB), written atomically."""
    _write_atomic(path, gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))


def read_gzip_json(path: Path) -> Any:
    """What ``write_gzip_json`` wrote; OSError, EOFError or ValueError if the file is broken."""
    return json.loads(gzip.decompress(path.read_bytes()))


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def type_name(value: Any) -> str:
    """How a JSON value's type reads in an error: ``a string``, ``a list`` ..."""
    names = {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
