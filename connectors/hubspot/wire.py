"""Parsing a HubSpot page body once, keeping each record's own JSON text.

The store keeps every record's raw JSON beside its canonical row. Encoding the
parsed dict again costs about as much as parsing it; instead the `results`
array is decoded element by element (the C scanner behind `json.loads`) and
each element's exact text is sliced from the body:

    data, raws = loads_page(b'{"results":[{"id":"1"}],"paging":{"next":{"after":"2"}}}')
    data["results"][0] == {"id": "1"};  raws == ['{"id":"1"}']

Any key order and whitespace are accepted; a malformed or truncated body
raises `json.JSONDecodeError` (retried by the client, like `json.loads`).
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def loads_page(body: bytes | str) -> tuple[dict[str, Any], list[str]]:
    """(the parsed body, the JSON text of each element of its `results`)."""
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
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
