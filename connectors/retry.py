"""The one retry policy every connector uses.

Connectors turn what a CRM says into the error tree of `kpisync.errors`
(429/5xx/reset → RetriableError with the server's Retry-After; budget spent →
LimitReached; credentials refused → AuthError) and wrap each request in
`retrying(...)`. Backoff is exponential with jitter; a Retry-After from the
server wins when it is longer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from kpisync.errors import RetriableError

log = logging.getLogger("kpisync.retry")
T = TypeVar("T")

MAX_WAIT_S = 120.0


class _RetryAfterOrBackoff:
    def __init__(self, initial: float, max_wait: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial, max=max_wait, jitter=initial)
        self._max = max_wait

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted is not None:
            return min(max(float(hinted), 0.0), self._max) or backoff
        return backoff


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("retrying after %s (attempt %d, waiting %.1fs)", exc, state.attempt_number, wait)


def retrying(max_retries: int, *, initial_wait: float = 0.5, max_wait: float = MAX_WAIT_S) -> Retrying:
    """A tenacity Retrying for RetriableError; other errors pass straight through."""
    return Retrying(
        retry=retry_if_exception_type(RetriableError),
        wait=_RetryAfterOrBackoff(initial_wait, max_wait),
        stop=stop_after_attempt(max_retries + 1),
        before_sleep=_log_retry,
        reraise=True,
    )


def call_with_retry(fn: Callable[[], T], max_retries: int, **kwargs: float) -> T:
    return retrying(max_retries, **kwargs)(fn)
