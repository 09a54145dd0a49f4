"""The transport seam: one place that decides how kpisync talks HTTP(S).

TLS is always verified. A configured CA bundle (the sandbox's, a corporate TLS
proxy's) must win over `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` in the
environment, which plain requests lets override a session's `verify`
(salesforce-api.md §1.5); proxies from the environment still apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests


class VerifiedSession(requests.Session):
    def __init__(self, ca_bundle: Path | None = None) -> None:
        super().__init__()
        self.verify = str(ca_bundle) if ca_bundle else True
        self._pinned = ca_bundle is not None

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._pinned:
            settings["verify"] = self.verify
        return settings


def make_session(ca_bundle: Path | None = None, user_agent: str = "kpisync") -> VerifiedSession:
    session = VerifiedSession(ca_bundle)
    session.headers["User-Agent"] = user_agent
    return session
