"""FastAPI dependencies: the service, and who is calling (authenticated and rate-limited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, require_admin, require_tenant
from api.service import Service
from rag.errors import Unauthorized

bearer = HTTPBearer(auto_error=False, description="An API key: 'Authorization: Bearer KEY'")


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _authenticate(
    request: Request, service: Service, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    try:
        return service.keyring.authenticate(credentials.credentials if credentials else None)
    except Unauthorized:
        # each failure spends one of the address's tokens; past them, 429 before the 401
        service.failed_auth.check("auth:" + _address(request))
        raise


def get_principal(
    request: Request,
    service: Annotated[Service, Depends(get_service)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    principal = _authenticate(request, service, credentials)
    request.state.principal = principal
    service.limiter.check(principal.key_id if principal.key_id != "local" else "local:" + _address(request))
    return principal


def get_tenant(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    return require_tenant(principal)


def get_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    return require_admin(principal)


def get_optional_principal(
    request: Request,
    service: Annotated[Service, Depends(get_service)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """Who calls an endpoint that also answers without a key (``/readyz``); ``None``: nobody known."""
    if credentials is None and not service.settings.auth_disabled:
        return None
    return _authenticate(request, service, credentials)


ServiceDep = Annotated[Service, Depends(get_service)]
TenantDep = Annotated[Principal, Depends(get_tenant)]
AdminDep = Annotated[Principal, Depends(get_admin)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]
