"""A Salesforce org on 127.0.0.1 that the unmodified simple-salesforce and kpisync talk to over HTTPS.

    sandbox = start(size="small", data_dir=Path("sandbox-data"))
    print(sandbox.info)          # {"crm": "salesforce", "url", "config", "username", ...}
    ...kpisync sync --config sandbox.config_path...
    sandbox.stop()

The org is the generator's canonical org translated into Salesforce records
(`salesforce_seed`), kept in SQLite under `data_dir` and reused by the next
start with the same size and seed. `data_dir/salesforce.yaml` is a kpisync
config pointing at the sandbox — the file a newcomer edits. Test hooks
(`insert`, `update`, `delete`, `expire_sessions`, `field_value`, `fail_write`)
change the org between syncs the way users and Salesforce would, bumping
SystemModstamp.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kpisync.connectors.sandbox.salesforce_api import Credentials, SalesforceApi
from kpisync.connectors.sandbox.salesforce_org import OrgStore
from kpisync.connectors.sandbox.salesforce_seed import Seeder
from kpisync.connectors.sandbox.server import SandboxServer

_ORG_FILE = "salesforce_org.db"
# the recorded describe (verbatim from a real org) is the template of every describe the sandbox serves
_DESCRIBE_TEMPLATE = Path(__file__).with_name("salesforce_describe_template.json")


@dataclass
class SalesforceSandbox:
    url: str
    server: SandboxServer
    config_path: Path
    info: dict[str, Any]
    org: OrgStore
    api: SalesforceApi

    def stop(self) -> None:
        self.server.stop()
        self.org.close()

    # ---------------------------------------------------------------- test hooks

    def sf_id(self, canonical_id: str) -> str | None:
        """The Salesforce id the sandbox gave a canonical record."""
        row = self.org.conn.execute("SELECT sf_id FROM id_map WHERE canonical = ?", (canonical_id,)).fetchone()
        return row[0] if row else None

    def insert(self, obj: str, fields: dict[str, Any], stamp: str | None = None) -> str:
        record_id = self.org.new_id(obj)
        stamp = stamp or self.org.now()
        record = {"CreatedDate": stamp, **fields, "Id": record_id, "SystemModstamp": stamp, "LastModifiedDate": stamp}
        self.org.insert_many(obj, [record])
        return record_id

    def update(self, record_id: str, fields: dict[str, Any], stamp: str | None = None) -> None:
        self.org.update(record_id, fields, stamp)

    def delete(self, record_id: str, stamp: str | None = None) -> None:
        """Soft delete: to the Recycle Bin, visible to queryAll with IsDeleted = true."""
        self.org.set_deleted(record_id, True, stamp)

    def purge(self, record_id: str) -> None:
        self.org.purge(record_id)

    def expire_sessions(self) -> None:
        """Every session dies (timeout, revocation): the next call answers 401 INVALID_SESSION_ID."""
        self.api.sessions.clear()

    def set_api_usage(self, used: int, limit: int | None = None) -> None:
        with self.api.budget.lock:
            self.api.budget.used = used
            if limit is not None:
                self.api.budget.limit = limit

    def fail_write(
        self,
        record_id: str,
        code: str = "UNABLE_TO_LOCK_ROW",
        message: str = "unable to obtain exclusive access to this record",
    ) -> None:
        """The next composite/sobjects update of this record fails with `code` (partial failure)."""
        self.api.write_failures[record_id] = (code, message)

    def field_value(self, record_id: str, field: str) -> Any:
        found = self.org.get(record_id)
        return found[1].get(field) if found else None

    def record(self, record_id: str) -> dict[str, Any] | None:
        found = self.org.get(record_id)
        return found[1] if found else None

    def calls(self, path_pattern: str = r"/services/data") -> int:
        return self.server.calls(path_pattern)


def _build_org(org: OrgStore, canonical: Path | None, size: str, seed: int, now: str | None, data_dir: Path) -> None:
    if canonical is None:
        from kpisync.generator import build_org  # the shared generator (lands on main)
        from kpisync.store import Store

        canonical = data_dir / f"canonical-{size}-{seed}.db"
        if canonical.exists():
            canonical.unlink()
        with Store.open(canonical) as store:
            build_org(store, size=size, seed=seed, now=now)
    src = sqlite3.connect(str(canonical))
    try:
        seeder = Seeder(src, org)
        counts = seeder.run()
    finally:
        src.close()
    org.set_meta("mapping", json.dumps(seeder.mapping()))
    org.set_meta("counts", json.dumps(counts))


def start(
    size: str = "small",
    seed: int = 7,
    data_dir: Path = Path("sandbox-data"),
    port: int = 0,
    now: str | None = None,
    *,
    canonical: Path | None = None,
    api_limit: int = 5_000_000,
) -> SalesforceSandbox:
    """Build (or reuse) the org under `data_dir` and serve it over HTTPS on 127.0.0.1:`port`.

    `canonical`: serve this canonical store instead of generating one (tests
    build small hand-made orgs this way).
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    source = f"canonical:{canonical.resolve()}" if canonical else f"generator:{size}:{seed}:{now}"
    org_path = data_dir / _ORG_FILE
    org = OrgStore(org_path)
    if org.meta("source") != source or org.meta("mapping") is None:
        org.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{org_path}{suffix}").unlink(missing_ok=True)
        org = OrgStore(org_path)
        _build_org(org, canonical, size, seed, now, data_dir)
        org.set_meta("source", source)
    creds = _credentials(org)
    api = SalesforceApi(org, creds, json.loads(_DESCRIBE_TEMPLATE.read_text()), api_limit)
    server = SandboxServer(api.router(), port=port, tls_dir=data_dir / "tls").start()
    api.base_url = server.url
    assert server.ca_bundle is not None
    config_path = _write_config(data_dir, server.url, server.ca_bundle, creds, json.loads(org.meta("mapping") or "{}"))
    info = {
        "crm": "salesforce",
        "url": server.url,
        "config": str(config_path),
        "username": creds.username,
        "password": creds.password,
        "security_token": creds.security_token,
        "ca_bundle": str(server.ca_bundle),
    }
    return SalesforceSandbox(server.url, server, config_path, info, org, api)


def _credentials(org: OrgStore) -> Credentials:
    stored = org.meta("credentials")
    if stored:
        return Credentials(**json.loads(stored))
    creds = Credentials(
        username="kpi.integration@sandbox.kpisync.invalid",
        password=f"sandbox-{secrets.token_urlsafe(9)}",
        security_token=secrets.token_urlsafe(12),
        consumer_key=f"3MVG9sandbox{secrets.token_hex(8)}",
    )
    org.set_meta("credentials", json.dumps(creds.__dict__))
    return creds


def _write_config(data_dir: Path, url: str, ca: Path, creds: Credentials, mapping: dict[str, Any]) -> Path:
    """A kpisync config for this sandbox; secrets go to files beside it (`${file:…}` references)."""
    secret_dir = data_dir / "secrets"
    secret_dir.mkdir(exist_ok=True)
    for name, value in (("sf_password", creds.password), ("sf_security_token", creds.security_token)):
        path = secret_dir / name
        path.write_text(value + "\n")
        path.chmod(0o600)
    config = {
        "crm": "salesforce",
        "name": "sandbox-salesforce",
        "store": "data/sandbox-salesforce.db",
        "timezone": "Europe/London",
        "auth": {
            "method": "password",
            "username": creds.username,
            "password": "${file:secrets/sf_password}",
            "security_token": "${file:secrets/sf_security_token}",
        },
        "connection": {
            "base_url": url,  # the login host; a real org uses https://login.salesforce.com
            "ca_bundle": str(ca),
            "api_version": "59.0",
            "min_api_calls_left": 1000,
            "bulk_threshold": 50000,
        },
        "mapping": mapping,
    }
    path = data_dir / "salesforce.yaml"
    header = "# kpisync config for the Salesforce sandbox (kpisync sandbox serve --crm salesforce).\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path
