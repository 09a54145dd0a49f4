"""Sandbox login endpoints: SOAP username-password `login()` and the OAuth JWT bearer token (salesforce-api.md §1.2, §1.3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs
from xml.dom import minidom
from xml.parsers.expat import ExpatError

import jwt

from kpisync.connectors.sandbox.salesforce_wire import INTEGRATION_USER, ORG_ID
from kpisync.connectors.sandbox.server import Request, Response


class LoginRoutes:
    creds: Any
    base_url: str

    def new_session(self) -> str:
        raise NotImplementedError

    def soap_login(self, request: Request) -> Response:
        try:
            doc = minidom.parseString(request.body)
            username = _text(doc, "username")
            password = _text(doc, "password")
        except (IndexError, AttributeError, ExpatError):
            return self._soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        expected = self.creds.password + self.creds.security_token
        if username != self.creds.username or password != expected:
            return self._soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        ver = request.match.group("ver") if request.match else "59.0"
        session = self.new_session()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
            'envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{self.base_url}/services/Soap/m/{ver}/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{self.base_url}/services/Soap/u/{ver}/{ORG_ID}</serverUrl>"
            f"<sessionId>{session}</sessionId><userId>{INTEGRATION_USER}</userId>"
            f"<userInfo><organizationId>{ORG_ID}</organizationId><sessionSecondsValid>7200</sessionSecondsValid>"
            f"<userName>{self.creds.username}</userName><userTimeZone>Europe/London</userTimeZone></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body, content_type="text/xml; charset=utf-8")

    @staticmethod
    def _soap_fault(code: str, message: str) -> Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
            'envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
            f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail>"
            f"<sf:LoginFault><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}"
            "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Response(500, body, content_type="text/xml; charset=utf-8")

    def oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Response(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        try:
            # the sandbox parses the assertion but does not verify its signature (it has no certificate)
            claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False})
        except jwt.PyJWTError:
            return Response(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
        if claims.get("iss") != self.creds.consumer_key:
            return Response(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
        if claims.get("sub") != self.creds.username:
            return Response(400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"})
        return Response(
            200,
            {
                "access_token": self.new_session(),
                "scope": "api",
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{ORG_ID}/{INTEGRATION_USER}",
                "token_type": "Bearer",
            },
        )


def _text(doc: minidom.Document, local_name: str) -> str:
    node = doc.getElementsByTagNameNS("*", local_name)[0].firstChild
    return str(node.nodeValue) if node is not None else ""
