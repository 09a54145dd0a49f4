"""Parsing a HubSpot page body once, keeping each record's own JSON text.

The store keeps every record's raw JSON beside its canonical row. Encoding the
parsed dict again with `json` costs about as much as parsing it; instead the `results`
array is decoded element by element (the C scanner behind `json.loads`) and
each element's exact text is sliced from the body:

    data, raws = loads_page(b'{"results":[{"id":"1"}],"paging":{"next":{"after":"2"}}}')
    data["results"][0] == {"id": "1"};  raws == ['{"id":"1"}']

Any key order and whitespace are accepted; a malformed or truncated body
raises `json.JSONDecodeError` (retried by the client, like `json.loads`).

The common case is faster still: orjson parses the body (about twice as fast
as `json.loads`), and each record encoded again by orjson (compact, a
microsecond) is found verbatim at its place in the body, so that text *is*
the record's slice. A record whose wire text differs (escaped non-ASCII,
other number spelling, whitespace) is sliced with the C scanner instead, and
a body orjson refuses (a huge integer, NaN, a lone surrogate, a cut) goes the
scanner's way whole, which decides as `json.loads` would.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

import orjson

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_RESULTS = re.compile(r'"results"[ \t\n\r]*:[ \t\n\r]*\[')
_RESULTS_BYTES = re.compile(rb'"results"[ \t\n\r]*:[ \t\n\r]*\[')


def loads_page(body: bytes | str) -> tuple[dict[str, Any], list[str]]:
    """(the parsed body, the JSON text of each element of its `results`)."""
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    try:
        data = orjson.loads(body)  # bytes: a third faster than from the str
    except orjson.JSONDecodeError:
        data = None  # the scanner below decides, and says why, as json.loads would
    if isinstance(data, dict):
        results = data.get("results")
        if not isinstance(results, list) or not results:
            return data, []
        raws = _joined(body, results) or _slices(text, results)
        if raws is not None:
            return data, raws
    return _scan(text)


def _joined(body: bytes | str, results: list[Any]) -> list[str] | None:
    """The common case in one comparison: the body holds the records exactly as orjson writes them,
    comma-separated (a compact body whose text is orjson's). None: the record-by-record way decides."""
    wire = body if isinstance(body, bytes | bytearray) else body.encode()
    found = _RESULTS_BYTES.search(wire)
    if found is None:
        return None
    encoded = [orjson.dumps(record) for record in results]
    start = found.end()
    joined = b",".join(encoded)
    if not wire.startswith(joined, start) or wire[start + len(joined) : start + len(joined) + 1] != b"]":
        return None
    return [raw.decode() for raw in encoded]


def _slices(text: str, results: list[Any]) -> list[str] | None:
    """Each record's text in the body, found by encoding the parsed record again; None: not where it
    should be (the caller scans the body instead)."""
    found = _RESULTS.search(text)
    if found is None:
        return None
    skip = _WS.match
    idx = skip(text, found.end()).end()
    raws: list[str] = []
    last = len(results) - 1
    for n, record in enumerate(results):
        raw = orjson.dumps(record).decode()
        if text.startswith(raw, idx):
            end = idx + len(raw)
        else:  # spelled differently on the wire: the scanner gives the exact slice
            try:
                item, end = _DECODER.raw_decode(text, idx)
            except ValueError:
                return None
            if item != record:
                return None
            raw = text[idx:end]
        raws.append(raw)
        idx = skip(text, end).end()
        if idx >= len(text) or text[idx] != ("]" if n == last else ","):
            return None
        if n != last:
            idx = skip(text, idx + 1).end()
    return raws


def _scan(text: str) -> tuple[dict[str, Any], list[str]]:
    try:
        return _object(text)
    except (IndexError, ValueError) as exc:  # JSONDecodeError is a ValueError; IndexError: cut short
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(f"malformed page body ({type(exc).__name__})", text, len(text)) from None


def _object(text: str) -> tuple[dict[str, Any], list[str]]:
    skip = _WS.match
    idx = skip(text, 0).end()
    if text[idx] != "{":
        raise ValueError("a page body is a JSON object")
    out: dict[str, Any] = {}
    raws: list[str] = []
    idx = skip(text, idx + 1).end()
    if text[idx] == "}":
        _end(text, idx + 1)
        return out, raws
    while True:
        if text[idx] != '"':
            raise ValueError("expected a key")
        key, idx = scanstring(text, idx + 1)
        idx = skip(text, idx).end()
        if text[idx] != ":":
            raise ValueError("expected ':'")
        idx = skip(text, idx + 1).end()
        if key == "results" and text[idx] == "[":
            value, idx = _results(text, idx + 1, raws)
        else:
            value, idx = _DECODER.raw_decode(text, idx)
        out[key] = value
        idx = skip(text, idx).end()
        char = text[idx]
        idx = skip(text, idx + 1).end()
        if char == "}":
            _end(text, idx)
            return out, raws
        if char != ",":
            raise ValueError("expected ',' or '}'")


def _results(text: str, idx: int, raws: list[str]) -> tuple[list[Any], int]:
    skip = _WS.match
    items: list[Any] = []
    idx = skip(text, idx).end()
    if text[idx] == "]":
        return items, idx + 1
    decode = _DECODER.raw_decode
    while True:
        item, end = decode(text, idx)
        items.append(item)
        raws.append(text[idx:end])
        idx = skip(text, end).end()
        char = text[idx]
        if char == "]":
            return items, idx + 1
        if char != ",":
            raise ValueError("expected ',' or ']'")
        idx = skip(text, idx + 1).end()


def _end(text: str, idx: int) -> None:
    end = _WS.match(text, idx).end()
    if end != len(text):
        raise ValueError(f"extra data after the page body at {end}")
