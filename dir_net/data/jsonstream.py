"""Streaming JSON reader with bounded memory (no third-party parser needed).

The big InterHand2.6M files (data.json up to 3.7 GB, joint_3d.json, MANO_NeuralAnnot.json) are a
few shallow containers holding very many small values. `iter_items(path, depth)` walks the
containers down to `depth` by hand and decodes each value found there with the C-accelerated
`json.JSONDecoder.raw_decode` over a sliding text buffer, so only one small value is a Python object
at a time:

    data.json, depth 2      -> (("images", 0), {...}), (("annotations", 7), {...}), ...
    joint_3d.json, depth 2  -> (("3", "69148"), {"world_coord": ...}), ...

A scalar met above `depth` is yielded with its shorter key path. Malformed or truncated input raises
`DataError` naming the file and the character offset.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from dir_net.errors import DataError

_SPACE = re.compile(r"[ \t\n\r]*")
CHUNK_CHARS = 1 << 22
_CUT_MARGIN = 4096  # longest string a chunk boundary may cut unnoticed


class _Reader:
    """A text buffer over a file that refills on demand; `pos` indexes the buffer."""

    def __init__(self, path: Path, chunk_chars: int) -> None:
        self.path = path
        self.file = open(path, "r", encoding="utf-8")
        self.chunk = chunk_chars
        self.buf = ""
        self.pos = 0
        self.dropped = 0  # characters discarded before buf[0]
        self.eof = False
        self.decoder = json.JSONDecoder()

    def close(self) -> None:
        self.file.close()

    def error(self, what: str) -> DataError:
        return DataError(
            f"{self.path}: {what} at character {self.dropped + self.pos}; the file is not valid "
            "JSON (truncated or corrupt download?) - download or regenerate it"
        )

    def fill(self) -> bool:
        """Append more text (at least as much as is buffered, so long values cost linear time)."""
        if self.eof:
            return False
        if self.pos > len(self.buf) // 2:
            self.dropped += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        text = self.file.read(max(self.chunk, len(self.buf)))
        if not text:
            self.eof = True
            return False
        self.buf += text
        return True

    def peek(self) -> str:
        """Next non-whitespace character ('' at end of file), not consumed."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def take(self, allowed: str) -> str:
        c = self.peek()
        if not c or c not in allowed:
            raise self.error(f"expected one of {list(allowed)}, found {c!r}" if c else "unexpected end of file")
        self.pos += 1
        return c

    def value(self) -> Any:
        if not self.peek():
            raise self.error("unexpected end of file")
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # Only an error near the end of the buffer can be a value cut by the chunking.
                if exc.pos >= len(self.buf) - _CUT_MARGIN and self.fill():
                    continue
                self.pos = exc.pos
                raise self.error(f"invalid JSON value ({exc.msg})") from None
            # A number at the very end of the buffer may continue in the next chunk.
            if end >= len(self.buf) and self.fill():
                continue
            self.pos = end
            return value

    def key(self) -> str:
        if self.peek() != '"':
            raise self.error(f"expected an object key string, found {self.peek()!r}")
        return self.value()


def _walk(r: _Reader, depth: int, prefix: tuple) -> Iterator[tuple[tuple, Any]]:
    c = r.peek()
    if depth == 0 or c not in "{[":
        yield prefix, r.value()
        return
    r.pos += 1
    close = "}" if c == "{" else "]"
    if r.peek() == close:
        r.pos += 1
        return
    i = 0
    while True:
        if c == "{":
            k: Any = r.key()
            r.take(":")
        else:
            k = i
        yield from _walk(r, depth - 1, prefix + (k,))
        i += 1
        if r.take("," + close) == close:
            return


def iter_items(path: str | Path, depth: int, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[tuple, Any]]:
    """Yield (key path, value) for every value `depth` containers deep in the JSON file `path`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    r = _Reader(path, chunk_chars)
    try:
        yield from _walk(r, depth, ())
        if r.peek():
            raise r.error("trailing data after the top-level value")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}); the file is corrupt") from None
    finally:
        r.close()


def load_small(path: str | Path) -> Any:
    """json.load for small files (camera.json, RootNet output) with a DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "the file is truncated or corrupt - download or regenerate it"
        ) from None
