"""The SOQL subset the Salesforce sandbox understands, parsed into SQL over its org store.

    SELECT f1, Rel.Name, ... | COUNT() FROM Object
    [WHERE field op literal [AND field op literal ...]]
    [ORDER BY field [ASC|DESC][, ...]] [LIMIT n]

Literals as Salesforce writes them (salesforce-api.md §2.5): unquoted datetimes
(`2025-04-15T02:00:00Z`, `+01:00` offsets) and dates, single-quoted strings
with backslash escapes, numbers, true/false, null, and `IN ('a', 'b')`.
Anything else is a `MALFORMED_QUERY`, as Salesforce answers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Condition:
    field: str
    op: str
    value: Any  # a Python value, or a list for IN


@dataclass
class Soql:
    text: str
    fields: list[str]  # empty for COUNT()
    count: bool
    sobject: str
    where: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>>=|<=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)

KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "ORDER", "BY", "LIMIT", "ASC", "DESC", "IN", "NOT", "NULLS"}


def format_sf_datetime(moment: datetime) -> str:
    """Salesforce's REST datetime format: `2025-03-28T15:40:09.000+0000` (§2.2)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def datetime_literal(text: str) -> str:
    value = text.replace("Z", "+00:00")
    value = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)
    return format_sf_datetime(datetime.fromisoformat(value))


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", _pointed(text, pos, f"unexpected token: '{text[pos:].split()[0]}'"))
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _pointed(text: str, pos: int, message: str) -> str:
    # the layout Salesforce uses for SOQL errors (fixture error_400_invalid_field_query.json)
    return f"\n{text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{message}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected end of query: {self.text}")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() == word:
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.keyword(word):
            got = self.peek()
            raise SoqlError("MALFORMED_QUERY", f"expecting '{word}', found '{got[1] if got else 'EOF'}': {self.text}")

    def identifier(self) -> str:
        kind, value = self.next()
        if kind != "word" or value.upper() in KEYWORDS:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value}': {self.text}")
        return value

    def literal(self) -> Any:
        kind, value = self.next()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", value[1:-1])
        if kind == "datetime":
            return datetime_literal(value)
        if kind == "date":
            return value
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value}': {self.text}")

    def parse(self) -> Soql:
        self.expect("SELECT")
        fields: list[str] = []
        count = False
        tok = self.peek()
        if tok and tok[1].upper() == "COUNT":
            self.next()
            if self.next()[1] != "(" or self.next()[1] != ")":
                raise SoqlError("MALFORMED_QUERY", f"only COUNT() is supported: {self.text}")
            count = True
        else:
            while True:
                fields.append(self.identifier())
                if self.peek() == ("punct", ","):
                    self.next()
                    continue
                break
        self.expect("FROM")
        soql = Soql(self.text, fields, count, self.identifier())
        if self.keyword("WHERE"):
            while True:
                name = self.identifier()
                if self.keyword("IN"):
                    if self.next()[1] != "(":
                        raise SoqlError("MALFORMED_QUERY", f"expecting '(' after IN: {self.text}")
                    values = [self.literal()]
                    while self.peek() == ("punct", ","):
                        self.next()
                        values.append(self.literal())
                    if self.next()[1] != ")":
                        raise SoqlError("MALFORMED_QUERY", f"expecting ')': {self.text}")
                    soql.where.append(Condition(name, "IN", values))
                else:
                    kind, op = self.next()
                    if kind != "op":
                        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}': {self.text}")
                    soql.where.append(Condition(name, "!=" if op == "<>" else op, self.literal()))
                if self.keyword("AND"):
                    continue
                tok = self.peek()
                if tok and tok[1].upper() == "OR":
                    raise SoqlError("MALFORMED_QUERY", f"the sandbox understands AND only, not OR: {self.text}")
                break
        if self.keyword("ORDER"):
            self.expect("BY")
            while True:
                name = self.identifier()
                desc = self.keyword("DESC")
                if not desc:
                    self.keyword("ASC")
                soql.order_by.append((name, desc))
                if self.peek() == ("punct", ","):
                    self.next()
                    continue
                break
        if self.keyword("LIMIT"):
            kind, value = self.next()
            if kind != "number":
                raise SoqlError("MALFORMED_QUERY", f"LIMIT needs a number: {self.text}")
            soql.limit = int(value)
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek()[1]}': {self.text}")  # type: ignore[index]
        return soql


def parse(text: str) -> Soql:
    return _Parser(text).parse()


def column_error(soql: Soql, name: str) -> SoqlError:
    pos = max(soql.text.find(name), 0)
    return SoqlError(
        "INVALID_FIELD",
        _pointed(
            soql.text,
            pos,
            f"No such column '{name}' on entity '{soql.sobject}'. If you are attempting to use a custom field, "
            "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
            "describe call for the appropriate names.",
        ),
    )
