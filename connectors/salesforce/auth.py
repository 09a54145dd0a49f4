"""Getting a Salesforce session: SOAP username-password login, OAuth JWT bearer, or a given session.

kpisync sends the login itself, to `connection.base_url` (default
https://login.salesforce.com): simple-salesforce always builds
`https://{domain}.salesforce.com` login URLs and cannot reach a custom host
such as a My Domain login URL behind a proxy or the sandbox (salesforce-api.md
§1.5). The session id and instance URL are then handed to simple-salesforce.
Secrets never appear in the errors raised here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import jwt
import requests

from kpisync.config import Config, SalesforceAuth
from kpisync.errors import AuthError, RetriableError, RunError

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
_JWT_LIFETIME_S = 170  # Salesforce accepts exp at most 3 minutes ahead (§1.3)


@dataclass(frozen=True)
class SalesforceSession:
    session_id: str
    instance_url: str  # https://host[:port], no path
    user_id: str | None = None  # the integration user (permission set assignment)


def login(config: Config, http: requests.Session) -> SalesforceSession:
    auth = config.auth
    assert isinstance(auth, SalesforceAuth)
    login_url = (config.connection.base_url or DEFAULT_LOGIN_URL).rstrip("/")
    if auth.method == "session":
        instance = config.connection.instance_url or config.connection.base_url
        if not instance or auth.session_id is None:
            raise AuthError("auth.method session needs auth.session_id and connection.instance_url")
        return SalesforceSession(auth.session_id.get_secret_value(), instance)
    if auth.method == "jwt":
        return _jwt_login(auth, login_url, config.connection.api_version, http, config.connection.timeout_s)
    return _soap_login(auth, login_url, config.connection.api_version, http, config.connection.timeout_s)


def _post(http: requests.Session, url: str, timeout: float, **kwargs: object) -> requests.Response:
    try:
        return http.post(url, timeout=timeout, **kwargs)  # type: ignore[arg-type]
    except requests.exceptions.SSLError as exc:
        # an SSLError is a ConnectionError too, but retrying cannot make an untrusted certificate trusted
        raise RunError(
            f"TLS verification failed for the Salesforce login at {url}: set connection.ca_bundle to the CA "
            "that signed the Salesforce (or proxy) certificate"
        ) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise RetriableError(f"Salesforce login at {url} failed: {type(exc).__name__}") from exc


def _soap_login(
    auth: SalesforceAuth, login_url: str, version: str, http: requests.Session, timeout: float
) -> SalesforceSession:
    # SOAP login() is retired in API v65+ (§1.2): prefer jwt for a daemon.
    password = (auth.password.get_secret_value() if auth.password else "") + (
        auth.security_token.get_secret_value() if auth.security_token else ""
    )
    body = (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        '<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">'
        f"<n1:username>{escape(auth.username or '')}</n1:username>"
        f"<n1:password>{escape(password)}</n1:password>"
        "</n1:login></env:Body></env:Envelope>"
    )
    url = f"{login_url}/services/Soap/u/{version}"
    response = _post(
        http,
        url,
        timeout,
        data=body.encode(),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"},
    )
    text = response.text
    if response.status_code >= 500 and "<sf:exceptionCode>" not in text:
        raise RetriableError(f"Salesforce login at {url} answered {response.status_code}")
    if response.status_code != 200:
        code = _tag(text, "sf:exceptionCode") or str(response.status_code)
        message = _tag(text, "sf:exceptionMessage") or "login refused"
        raise AuthError(
            f"Salesforce refused the login of {auth.username} ({code}: {message}); check auth.username, "
            "auth.password and auth.security_token (or switch to auth.method jwt)"
        )
    session_id, server_url = _tag(text, "sessionId"), _tag(text, "serverUrl")
    if not session_id or not server_url:
        raise AuthError(f"Salesforce login at {url} answered without a sessionId/serverUrl")
    match = re.match(r"^(https?://[^/]+)", server_url)
    instance = match.group(1) if match else server_url
    return SalesforceSession(session_id, instance.replace("-api.", "."), _tag(text, "userId"))


def _tag(text: str, name: str) -> str | None:
    match = re.search(rf"<{re.escape(name)}>([^<]*)</{re.escape(name)}>", text)
    return match.group(1) if match else None


def _audience(login_url: str) -> str:
    """`aud`: https://login.salesforce.com for production, https://test.salesforce.com for sandbox orgs (§1.3).

    A My Domain login host takes the generic audience of its kind (verify in your org); any other host
    (a proxy, the kpisync sandbox) is its own audience.
    """
    host = re.sub(r"^https?://", "", login_url).split("/")[0].lower()
    if host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".my.salesforce.com"):
        return "https://login.salesforce.com"
    return login_url


def _jwt_login(
    auth: SalesforceAuth, login_url: str, version: str, http: requests.Session, timeout: float
) -> SalesforceSession:
    del version
    key_file = Path(auth.private_key_file or "")
    try:
        key = key_file.read_text()
    except OSError as exc:
        raise AuthError(f"cannot read auth.private_key_file {key_file}: {exc.strerror}") from exc
    claims = {
        "iss": auth.consumer_key,
        "sub": auth.username,
        "aud": _audience(login_url),
        "exp": int(time.time()) + _JWT_LIFETIME_S,
    }
    try:
        assertion = jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError) as exc:
        raise AuthError(f"auth.private_key_file {key_file} is not a usable RSA private key") from exc
    url = f"{login_url}/services/oauth2/token"
    response = _post(
        http,
        url,
        timeout,
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )
    if response.status_code >= 500:
        raise RetriableError(f"Salesforce token endpoint {url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise AuthError(f"Salesforce token endpoint {url} answered {response.status_code} without JSON") from exc
    if response.status_code != 200 or "access_token" not in body:
        raise AuthError(
            f"Salesforce refused the JWT login of {auth.username} ({body.get('error')}: "
            f"{body.get('error_description')}); check auth.consumer_key, the certificate uploaded to the "
            "connected app and that the user is pre-authorized"
        )
    user_id = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1] or None
    return SalesforceSession(body["access_token"], str(body["instance_url"]).rstrip("/"), user_id)
