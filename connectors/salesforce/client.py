"""Every Salesforce request goes through here: session, re-login, retries, the API budget.

Written once for all objects:
- one `requests` session pinned to the configured CA bundle, with a default
  timeout, shared by the login and by simple-salesforce;
- a 401 `INVALID_SESSION_ID` logs in again and replays the request, once per
  request (salesforce-api.md §1.4; simple-salesforce does not refresh a session
  it was handed);
- 429/5xx, connection resets and truncated bodies become RetriableError (the
  server's Retry-After honoured) for the one tenacity policy in connectors/retry.py;
- 403 `REQUEST_LIMIT_EXCEEDED` (daily allocation, §6) becomes LimitReached, and
  so does going below `connection.min_api_calls_left`, read from the
  `Sforce-Limit-Info` header every response carries.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)
from simple_salesforce.util import exception_handler

from kpisync.config import Config
from kpisync.connectors.http import VerifiedSession
from kpisync.connectors.retry import call_with_retry
from kpisync.connectors.salesforce.auth import SalesforceSession, login
from kpisync.errors import AuthError, LimitReached, RetriableError, RunError

log = logging.getLogger("kpisync.salesforce")
T = TypeVar("T")
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
BULK_CHUNK = 50_000


class _Http(VerifiedSession):
    """The pinned-CA session with a default timeout (simple-salesforce sends none)."""

    def __init__(self, ca_bundle: Path | None, timeout: float) -> None:
        super().__init__(ca_bundle)
        self.headers["User-Agent"] = "kpisync"
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class _Salesforce(Salesforce):
    """simple-salesforce, with response bodies parsed by orjson.

    A 2,000-record query page is about a megabyte of JSON; orjson reads it in
    about two thirds of the time json takes, into the same plain dicts and lists.
    `parse_result_to_json` is simple-salesforce's one place for that.
    """

    def parse_result_to_json(self, result: requests.Response) -> Any:
        return orjson.loads(result.content)


def _error_code(exc: SalesforceError) -> tuple[str, str]:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)[:300]


class SalesforceClient:
    def __init__(self, config: Config) -> None:
        self.config = config
        conn = config.connection
        self.http = _Http(conn.ca_bundle, conn.timeout_s)
        self.http.hooks["response"].append(self._observe)
        self._sf: Salesforce | None = None
        self.session: SalesforceSession | None = None
        self.calls = 0
        self.used: int | None = None
        self.limit: int | None = None
        self._last_headers: Any = {}
        self._describes: dict[str, dict[str, Any]] = {}

    # ---------------------------------------------------------------- session

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self.connect()
        assert self._sf is not None
        return self._sf

    def connect(self) -> None:
        self.session = call_with_retry(lambda: login(self.config, self.http), self.config.connection.max_retries)
        self._sf = _Salesforce(
            instance_url=self.session.instance_url,
            session_id=self.session.session_id,
            session=self.http,
            version=self.config.connection.api_version,
        )

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "/services/data/" in response.url:
            self.calls += 1
        self._last_headers = response.headers
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.used, self.limit = int(match.group(1)), int(match.group(2))

    @property
    def remaining(self) -> int | None:
        return None if self.used is None or self.limit is None else self.limit - self.used

    def close(self) -> None:
        self.http.close()

    # ---------------------------------------------------------------- the one request path

    def call(self, fn: Callable[[Salesforce], T], what: str) -> T:
        """Run one API request with re-login, error translation and retries."""
        return call_with_retry(lambda: self._attempt(fn, what), self.config.connection.max_retries)

    def _attempt(self, fn: Callable[[Salesforce], T], what: str) -> T:
        floor = self.config.connection.min_api_calls_left
        remaining = self.remaining
        if remaining is not None and remaining <= floor:
            raise LimitReached(
                f"Salesforce: {remaining} daily API calls left, at or below connection.min_api_calls_left "
                f"({floor}); stopping before {what}"
            )
        relogged = False
        while True:
            try:
                return fn(self.sf)
            except SalesforceExpiredSession as exc:
                if relogged or self.config.auth.method == "session":  # type: ignore[union-attr]
                    raise AuthError(
                        f"Salesforce: session expired or invalid during {what} and a new login did not help"
                        + (
                            " (auth.method session cannot log in again: provide a fresh session id)"
                            if self.config.auth.method == "session"
                            else ""
                        )  # type: ignore[union-attr]
                    ) from exc
                log.info("Salesforce session expired during %s: logging in again", what)
                self.connect()
                relogged = True
            except SalesforceRefusedRequest as exc:
                code, message = _error_code(exc)
                if code == "REQUEST_LIMIT_EXCEEDED" and "ConcurrentPerOrgLongTxn" in message:
                    raise RetriableError(f"Salesforce: {message} during {what}", self._retry_after()) from exc
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise LimitReached(
                        f"Salesforce: daily API request limit exceeded during {what} ({message}); "
                        "the run stopped cleanly and resumes from its cursor when the rolling window frees calls"
                    ) from exc
                raise RunError(f"Salesforce refused {what}: {code} {message}") from exc
            except SalesforceMalformedRequest as exc:
                code, message = _error_code(exc)
                raise RunError(f"Salesforce rejected {what}: {code} {message.strip()}") from exc
            except SalesforceGeneralError as exc:
                if exc.status == 429 or exc.status >= 500:
                    raise RetriableError(f"Salesforce answered {exc.status} to {what}", self._retry_after()) from exc
                code, message = _error_code(exc)
                raise RunError(f"Salesforce answered {exc.status} to {what}: {code} {message}") from exc
            except SalesforceError as exc:
                code, message = _error_code(exc)
                raise RunError(f"Salesforce answered {exc.status} to {what}: {code} {message}") from exc
            except requests.exceptions.SSLError as exc:
                raise RunError(
                    f"TLS verification failed for {what}: set connection.ca_bundle to the CA that signed the "
                    "Salesforce (or proxy) certificate"
                ) from exc
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                requests.exceptions.JSONDecodeError,
                orjson.JSONDecodeError,  # a body cut short (_Salesforce parses with orjson)
            ) as exc:
                raise RetriableError(f"{type(exc).__name__} during {what}") from exc

    def _retry_after(self) -> float | None:
        value = self._last_headers.get("Retry-After") if self._last_headers else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    # ---------------------------------------------------------------- reading

    def query_pages(self, soql: str, *, include_deleted: bool) -> Iterator[list[dict[str, Any]]]:
        """One list of records per REST page (≤2,000), following nextRecordsUrl (§2.3).

        The next page is fetched on a helper thread while the caller maps and
        stores the current one, so network time and processing overlap; at most
        one page waits, and only that thread talks HTTP while pages flow.
        """
        pages: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        closing = threading.Event()

        def hand_over(item: tuple[str, Any]) -> bool:
            while not closing.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def fetch() -> None:
            try:
                for page in self._pages(soql, include_deleted):
                    if not hand_over(("page", page)):
                        return
                hand_over(("end", None))
            except BaseException as exc:  # handed to the caller's thread, raised there
                hand_over(("error", exc))

        worker = threading.Thread(target=fetch, name="salesforce-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = pages.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:
            closing.set()
            worker.join(timeout=self.config.connection.timeout_s)

    def _pages(self, soql: str, include_deleted: bool) -> Iterator[list[dict[str, Any]]]:
        page = self.call(lambda sf: sf.query(soql, include_deleted=include_deleted), f"query {soql[:80]}")
        seen: set[str] = set()
        while True:
            yield page["records"]
            if page.get("done", True):
                return
            url = page["nextRecordsUrl"]
            if url in seen:  # a paginator that repeats itself would loop forever
                raise RunError(f"Salesforce returned the same nextRecordsUrl twice: {url}")
            seen.add(url)
            page = self.call(lambda sf, u=url: sf.query_more(u, identifier_is_url=True), "query_more")

    def count(self, soql: str) -> int:
        return int(self.call(lambda sf: sf.query(soql), "COUNT()")["totalSize"])

    def describe(self, obj: str) -> dict[str, Any]:
        if obj not in self._describes:
            self._describes[obj] = self.call(lambda sf: sf.restful(f"sobjects/{obj}/describe"), f"describe {obj}")
        return self._describes[obj]

    def forget_describe(self, obj: str | None = None) -> None:
        if obj is None:
            self._describes.clear()
        else:
            self._describes.pop(obj, None)

    def restful(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return self.call(lambda sf: sf.restful(path, method=method, **kwargs), f"{method} {path}")

    def tooling(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return self.call(lambda sf: sf.restful(f"tooling/{path}", method=method, **kwargs), f"{method} tooling/{path}")

    def limits(self) -> dict[str, Any]:
        return dict(self.restful("limits/"))

    # ---------------------------------------------------------------- Bulk API 2.0 (§3)

    def bulk_query(
        self, soql: str, *, include_deleted: bool, poll_s: float = 0.5, page_size: int = 2000
    ) -> Iterator[list[dict[str, str]]]:
        """Rows of a Bulk 2.0 query job as CSV dicts (strings, "" for null), `page_size` rows at a time."""
        import time

        body = {
            "operation": "queryAll" if include_deleted else "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        job = self.restful("jobs/query", method="POST", json=body)
        job_id = job["id"]
        wait = poll_s
        while job.get("state") not in ("JobComplete", "Failed", "Aborted"):
            time.sleep(wait)
            wait = min(wait * 2, 10.0)
            job = self.restful(f"jobs/query/{job_id}")
        if job["state"] != "JobComplete":
            raise RunError(f"Salesforce Bulk 2.0 job {job_id} ended {job['state']}: {job.get('errorMessage')}")
        locator: str | None = None
        while True:
            params = {"maxRecords": BULK_CHUNK, **({"locator": locator} if locator else {})}
            text, locator = self.call(lambda sf, p=params: self._bulk_chunk(sf, job_id, p), "bulk results")
            reader = csv.DictReader(io.StringIO(text))
            del text
            while rows := list(itertools.islice(reader, page_size)):  # only one page of dicts at a time
                yield rows
            if not locator or locator == "null":
                break
        try:
            self.restful(f"jobs/query/{job_id}", method="DELETE")
        except RunError as exc:  # cleanup only: the rows are already read
            log.warning("could not delete Bulk job %s: %s", job_id, exc)

    def _bulk_chunk(self, sf: Salesforce, job_id: str, params: dict[str, Any]) -> tuple[str, str | None]:
        url = f"{sf.base_url}jobs/query/{job_id}/results"
        result = self.http.get(url, params=params, headers={**sf.headers, "Accept": "text/csv"})
        if result.status_code >= 300:
            exception_handler(result, name="bulk results")
        if "Sforce-NumberOfRecords" not in result.headers:
            raise RetriableError("Bulk results without Sforce-NumberOfRecords (truncated response)")
        return result.text, result.headers.get("Sforce-Locator")
