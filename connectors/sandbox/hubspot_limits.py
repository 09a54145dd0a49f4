"""The sandbox portal's enforcement of HubSpot's rate limits (hubspot-api.md §10, §4)."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field


@dataclass
class RateLimits:
    """The sandbox's enforcement of HubSpot's limits (§10); None switches one off."""

    ten_secondly: int | None = 100  # Free/Starter private app
    search_per_s: int | None = 5
    daily: int = 250_000
    _window: collections.deque[float] = field(default_factory=collections.deque)
    _search: collections.deque[float] = field(default_factory=collections.deque)
    daily_used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, is_search: bool) -> str | None:
        """Count one call; the policy name it breaks, if any."""
        now = time.monotonic()
        with self.lock:
            if self.daily_used >= self.daily:
                return "DAILY"
            if is_search and self.search_per_s is not None:
                while self._search and now - self._search[0] >= 1.0:
                    self._search.popleft()
                if len(self._search) >= self.search_per_s:
                    return "SECONDLY"
                self._search.append(now)
            if self.ten_secondly is not None:
                while self._window and now - self._window[0] >= 10.0:
                    self._window.popleft()
                if len(self._window) >= self.ten_secondly:
                    return "TEN_SECONDLY_ROLLING"
                self._window.append(now)
            self.daily_used += 1
            return None

    def headers(self) -> dict[str, str]:
        with self.lock:
            limit = self.ten_secondly or 100_000
            remaining = max(limit - len(self._window), 0)
            return {
                "X-HubSpot-RateLimit-Max": str(limit),
                "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Daily": str(self.daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily - self.daily_used, 0)),
            }
