"""The one place kpisync talks HTTP to HubSpot: hubspot-api-client 12.x with
pacing, retries, OAuth refresh and fast raw reads.

- Every request goes through `HubSpotClient.call(...)`: a sliding-window pacer
  keeps kpisync under `connection.requests_per_10s` and search under
  `connection.search_per_s` (hubspot-api.md §10, §4) instead of bouncing off
  429s; errors become the kpisync error tree and `connectors/retry.py` retries
  what is retriable, honouring Retry-After.
- Bulk reads use the generated APIs with `_preload_content=False` and parse
  the body once (`wire.loads_page`, which also keeps each record's JSON text
  for the store): the client's model objects cost ~20× the parse. Writes and
  small calls keep the models.
- The generated APIs are built once per token (each accessor builds a new
  pool, §2.1); an OAuth refresh rebuilds them.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import hubspot
import urllib3
from urllib3.util.retry import Retry

from kpisync.config import Connection, HubSpotAuth
from kpisync.connectors.hubspot.wire import loads_page
from kpisync.connectors.retry import call_with_retry
from kpisync.errors import AuthError, LimitReached, RetriableError, RunError

log = logging.getLogger("kpisync.hubspot")
T = TypeVar("T")
DEFAULT_HOST = "https://api.hubapi.com"


class ApiError(RunError):
    """A HubSpot answer that retrying cannot fix (400, 404, 409): callers decide."""

    def __init__(self, status: int, body: dict[str, Any], what: str) -> None:
        self.status = status
        self.body = body
        self.category = str(body.get("category") or body.get("status") or "")
        message = str(body.get("message") or "")[:300]
        super().__init__(f"HubSpot {what}: HTTP {status} {self.category}: {message}".rstrip(": "))


class SlidingWindow:
    """At most `limit` calls in any `window_s` seconds (a rolling window, like HubSpot's)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window_s:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self._sent[0] + self.window_s - now
            time.sleep(max(wait, 0.001) + 0.02)  # margin: the server clocks arrival, not sending

    def observe(self, used: int, server_limit: int) -> None:
        """The server counted `used` calls in its window (ours and any other process's on the
        same app, e.g. the previous job of a cycle): the window holds at least that many, padded
        with calls made now, so `server_limit - limit` stays as the margin."""
        with self._lock:
            now = time.monotonic()
            while self._sent and now - self._sent[0] >= self.window_s:
                self._sent.popleft()
            missing = min(used, server_limit) - len(self._sent)
            if missing > 0:
                self._sent.extend([now] * min(missing, self.limit))
                self._sent = deque(sorted(self._sent))

    def drain(self, seconds: float) -> None:
        """The server said 429: treat the window as full for `seconds`."""
        with self._lock:
            stamp = time.monotonic() + seconds - self.window_s
            self._sent = deque([stamp] * self.limit)


class Apis:
    """The generated API objects of one token, each built on first use and kept (importing every
    sub-package up front costs about a second)."""

    _PATHS: ClassVar[dict[str, tuple[str, ...]]] = {
        "objects": ("crm", "objects", "basic_api"),
        "batch": ("crm", "objects", "batch_api"),
        "search": ("crm", "objects", "search_api"),
        "owners": ("crm", "owners", "owners_api"),
        "pipelines": ("crm", "pipelines", "pipelines_api"),
        "properties": ("crm", "properties", "core_api"),
        "groups": ("crm", "properties", "groups_api"),
        "schemas": ("crm", "schemas", "core_api"),
        "associations": ("crm", "associations", "v4", "batch_api"),
    }

    def __init__(self, client: hubspot.Client) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        path = self._PATHS.get(name)
        if path is None:
            raise AttributeError(name)
        api: Any = self._client
        for part in path:
            api = getattr(api, part)
        setattr(self, name, api)
        return api


class HubSpotClient:
    def __init__(self, connection: Connection, auth: HubSpotAuth) -> None:
        self.connection = connection
        self.auth = auth
        self.host = connection.base_url or DEFAULT_HOST
        self.timeout = (min(10.0, connection.timeout_s), connection.timeout_s)
        self.calls = 0
        self.daily_limit: int | None = None
        self.daily_remaining: int | None = None
        self._pace = SlidingWindow(connection.requests_per_10s, 10.0)
        self._search_pace = SlidingWindow(connection.search_per_s, 1.0)
        self._token: str | None = (
            auth.access_token.get_secret_value() if auth.method == "private_app" and auth.access_token else None
        )
        self._token_expires = float("inf")
        self._apis: Apis | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ building

    def _client(self, token: str | None) -> hubspot.Client:
        # urllib3 retries only connection failures; statuses are ours to handle (§2.3)
        retry = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, raise_on_status=False)
        kwargs: dict[str, Any] = {"host": self.host, "retry": retry}
        if self.connection.ca_bundle is not None:
            kwargs["ssl_ca_cert"] = str(self.connection.ca_bundle)
        return hubspot.Client.create(access_token=token, **kwargs)

    def apis(self) -> Apis:
        with self._lock:
            if self.auth.method == "oauth" and (self._token is None or time.time() >= self._token_expires):
                self._refresh()
            if self._apis is None:
                self._apis = Apis(self._client(self._token))
            return self._apis

    def _refresh(self) -> None:
        """OAuth refresh (§1.2); a dead refresh token is an AuthError, never retried."""
        auth = self.auth
        assert auth.refresh_token is not None and auth.client_secret is not None
        tokens = self._client(None).oauth.tokens_api
        try:
            answer = tokens.create(
                grant_type="refresh_token",
                client_id=auth.client_id,
                client_secret=auth.client_secret.get_secret_value(),
                refresh_token=auth.refresh_token.get_secret_value(),
                _request_timeout=self.timeout,
            )
        except Exception as exc:  # every sub-package has its own ApiException (§2.4)
            if getattr(exc, "status", None) is None:
                raise RetriableError(f"HubSpot OAuth refresh failed: {type(exc).__name__}") from None
            body = _body(getattr(exc, "body", None))
            raise AuthError(
                f"HubSpot refused the OAuth refresh token ({body.get('status') or exc.status}): re-authorize the app "
                "and update auth.refresh_token"
            ) from None
        self.calls += 1
        self._token = answer.access_token
        # refresh at 80 % of the lifetime rather than waiting for a 401 (§1.2)
        self._token_expires = time.time() + 0.8 * float(answer.expires_in or 1800)
        self._apis = None

    def _expire_token(self) -> bool:
        if self.auth.method != "oauth":
            return False
        with self._lock:
            self._token, self._apis = None, None
        return True

    # ------------------------------------------------------------ calling

    def call(self, what: str, fn: Callable[[Apis], T], *, search: bool = False) -> T:
        """Run `fn(apis)` paced and retried; `what` names the call in errors (never a secret)."""
        refreshed = [False]

        def attempt() -> T:
            if search:
                self._search_pace.acquire()
            self._pace.acquire()
            apis = self.apis()
            self.calls += 1
            try:
                return fn(apis)
            except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
                if _tls_failure(exc):  # retrying cannot make an untrusted certificate trusted
                    raise AuthError(f"HubSpot {what}: TLS verification failed — check connection.ca_bundle") from None
                raise RetriableError(f"HubSpot {what}: connection problem ({type(exc).__name__})") from None
            except json.JSONDecodeError:
                raise RetriableError(f"HubSpot {what}: truncated or invalid JSON body") from None
            except Exception as exc:
                status = getattr(exc, "status", None)
                if not isinstance(status, int):
                    raise
                if status == 0:  # the client's wrapper of an SSL error
                    raise AuthError(f"HubSpot {what}: TLS verification failed — check connection.ca_bundle") from None
                self._classify(
                    what, status, getattr(exc, "body", None), getattr(exc, "headers", None) or {}, refreshed, search
                )
                raise  # unreachable: _classify always raises

        return call_with_retry(attempt, self.connection.max_retries)

    def _classify(self, what: str, status: int, raw: Any, headers: Any, refreshed: list[bool], search: bool) -> None:
        body = _body(raw)
        if status == 429:
            policy = str(body.get("policyName") or "")
            if policy == "DAILY":
                raise LimitReached(
                    f"HubSpot daily API limit reached ({what}); kpisync resumes after midnight portal time"
                )
            hinted = _retry_after(headers)
            wait = hinted if hinted is not None else (1.0 if policy == "SECONDLY" else 10.0)
            (self._search_pace if policy == "SECONDLY" else self._pace).drain(wait)
            raise RetriableError(f"HubSpot {what}: rate limited ({policy or 'HTTP 429'})", retry_after=wait)
        if status == 401:
            if not refreshed[0] and self._expire_token():
                refreshed[0] = True  # one refresh, then the same request again (§11)
                raise RetriableError(f"HubSpot {what}: access token expired, refreshed", retry_after=0.0)
            raise AuthError(
                f"HubSpot refused the credentials ({body.get('category') or 'HTTP 401'}): check auth.access_token"
            )
        if status == 403:
            scopes = [
                s for e in body.get("errors") or [] for s in (e.get("context") or {}).get("requiredGranularScopes", [])
            ]
            raise AuthError(f"HubSpot {what}: missing scopes {', '.join(scopes) or '(unknown)'} — add them to the app")
        if status >= 500 or status in (423, 408):
            raise RetriableError(f"HubSpot {what}: HTTP {status}", retry_after=_retry_after(headers))
        raise ApiError(status, body, what)

    def json(self, what: str, fn: Callable[[Apis, dict[str, Any]], Any], *, search: bool = False) -> Any:
        """A raw read: `fn(apis, kw)` calls a generated API with `**kw` (no model objects)."""
        return self.call(what, lambda apis: json.loads(self._body(apis, fn)), search=search)

    def page(
        self, what: str, fn: Callable[[Apis, dict[str, Any]], Any], *, search: bool = False
    ) -> tuple[dict[str, Any], list[str]]:
        """A raw read of a page: the parsed body and each result's own JSON text (`wire.loads_page`)."""
        return self.call(what, lambda apis: loads_page(self._body(apis, fn)), search=search)

    def _body(self, apis: Apis, fn: Callable[[Apis, dict[str, Any]], Any]) -> bytes:
        response = fn(apis, {"_preload_content": False, "_request_timeout": self.timeout})
        try:
            data: bytes = response.data
        finally:
            response.release_conn()
        self._note_headers(response.headers)
        return data

    def model(self, what: str, fn: Callable[[Apis, dict[str, Any]], T]) -> T:
        return self.call(what, lambda apis: fn(apis, {"_request_timeout": self.timeout}))

    def model_with_headers(self, what: str, fn: Callable[[Apis, dict[str, Any]], tuple[T, int, Any]]) -> T:
        """A `*_with_http_info` call: the model object, with the rate-limit headers noted (the
        busy write paths must feed the pacer too)."""

        def run(apis: Apis) -> T:
            data, _status, headers = fn(apis, {"_request_timeout": self.timeout})
            self._note_headers(headers or {})
            return data

        return self.call(what, run)

    def _note_headers(self, headers: Any) -> None:
        daily = headers.get("X-HubSpot-RateLimit-Daily")
        remaining = headers.get("X-HubSpot-RateLimit-Daily-Remaining")
        if daily and remaining:
            self.daily_limit, self.daily_remaining = int(daily), int(remaining)
        left, most = headers.get("X-HubSpot-RateLimit-Remaining"), headers.get("X-HubSpot-RateLimit-Max")
        if left is not None and most is not None:
            # the budget is the app's, not this process's: calls made by another process (or
            # this cycle's previous job) count too, so the pacer takes the server's count
            self._pace.observe(int(most) - int(left), int(most))


def _tls_failure(exc: BaseException) -> bool:
    """urllib3 wraps a failed handshake in MaxRetryError(reason=SSLError); raw sockets raise ssl.SSLError."""
    reason = getattr(exc, "reason", None)
    return isinstance(exc, urllib3.exceptions.SSLError | ssl.SSLError) or isinstance(
        reason, urllib3.exceptions.SSLError | ssl.SSLError
    )


def _body(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {"message": str(raw)[:200]}
    return value if isinstance(value, dict) else {}


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
