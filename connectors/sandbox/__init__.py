"""Sandbox CRMs: Salesforce and HubSpot wire protocols on 127.0.0.1, serving a
generated org, for the demo, the tests and for trying a config safely."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any


def start(crm: str, *, size: str = "small", seed: int = 7, data_dir: Path, port: int = 0, **kwargs: Any) -> Any:
    """Start the sandbox for `crm` in this process; `.info`, `.config_path`, `.stop()`.

    Besides the CRM, the generated org has what CRMs do not hold — quotas,
    survey answers, (for HubSpot) marketing spend. They are written as the CSV
    inputs an admin would keep, and the sandbox's config points at them.
    """
    if crm == "salesforce":
        from kpisync.connectors.sandbox.salesforce import start as start_salesforce

        sandbox = start_salesforce(size=size, seed=seed, data_dir=data_dir, port=port, **kwargs)
        canonical = Path(data_dir) / f"canonical-{size}-{seed}.db"
        crm_id = sandbox.sf_id
    elif crm == "hubspot":
        from kpisync.connectors.sandbox.hubspot import start as start_hubspot

        sandbox = start_hubspot(size=size, seed=seed, data_dir=data_dir, port=port, **kwargs)
        canonical = Path(data_dir) / "hubspot_canonical.db"

        def crm_id(canonical_id: str) -> str | None:
            try:
                return str(sandbox.hs_id(canonical_id)[1])
            except (KeyError, LookupError, TypeError):
                return None
    else:
        raise ValueError(f"no sandbox for {crm!r}")
    if canonical.exists() and "canonical" not in kwargs:
        from kpisync.connectors.sandbox.inputs import attach_inputs

        attach_inputs(Path(sandbox.config_path), canonical, crm_id, spend=crm == "hubspot")
    return sandbox


def serve(crm: str, *, port: int = 0, size: str = "small", seed: int = 7, data_dir: Path | None = None) -> int:
    """Run until SIGTERM/SIGINT. The first stdout line is one JSON object for scripts."""
    folder = data_dir or Path(tempfile.mkdtemp(prefix=f"kpisync-{crm}-sandbox-"))
    sandbox = start(crm, size=size, seed=seed, data_dir=folder, port=port)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    sys.stdout.write(json.dumps(sandbox.info) + "\n")
    sys.stdout.flush()
    try:
        done.wait()
    finally:
        sandbox.stop()
    return 0
