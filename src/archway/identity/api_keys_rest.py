"""API keys over REST (admins): create (the key in that answer only), list, read, revoke.

No ``from __future__ import annotations``: FastAPI resolves the routes' annotations.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from archway.identity.api_keys import ApiKeyService
from archway.identity.domain import ApiKey
from archway.identity.rest_models import (
    ApiKeyCreated,
    ApiKeyCreation,
    ApiKeyOut,
    ApiKeyPageV1,
    ApiKeyPageV2,
)
from archway.kernel.auth.principal import Principal
from archway.kernel.http.guard import current_principal, requires
from archway.kernel.http.responses import (
    JsonResponse,
    page_request_dependency,
    page_response,
    timestamp,
)
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.pagination import PageRequest

KeyId = Annotated[str, Path(max_length=64, description="The key's id (UUIDv7).")]
Caller = Annotated[Principal, Depends(current_principal)]


def api_key_body(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id, "consumer": key.consumer, "plan": key.plan, "scopes": sorted(key.scopes),
        "created_at": timestamp(key.created_at),
        "revoked_at": timestamp(key.revoked_at) if key.revoked_at else None,
        "last_used_at": timestamp(key.last_used_at) if key.last_used_at else None,
    }


def build_api_keys_router(
    version: ApiVersion, service: ApiKeyService[Any], route_class: type[APIRoute]
) -> APIRouter:
    router = APIRouter(prefix=version.prefix, route_class=route_class, tags=["api-keys"])
    page_params = page_request_dependency(version, cursor_arity=1)

    @router.post(
        "/api-keys", status_code=201, response_model=ApiKeyCreated,
        summary="Create an API key (admins)", **requires("users:write", admin=True))
    async def create_api_key(body: ApiKeyCreation, caller: Caller) -> Response:
        """The `key` is in this answer only: it is stored as its SHA-256 digest. Send it as
        `X-API-Key` to the operations that accept the `ApiKey` scheme."""
        key, value = await service.create_as(
            caller, body.consumer, body.plan, frozenset(body.scopes))
        return JsonResponse(
            {**api_key_body(key), "key": value}, 201,
            headers={"Location": f"{version.prefix}/api-keys/{key.id}", "Cache-Control":
                     "no-store"})

    @router.get(
        "/api-keys", response_model=ApiKeyPageV1 if version is ApiVersion.V1 else ApiKeyPageV2,
        summary="List API keys (admins)", **requires("users:read", admin=True))
    async def list_api_keys(
        request: Request, caller: Caller, page: Annotated[PageRequest, Depends(page_params)]
    ) -> Response:
        """Every key, revoked ones included, oldest first; never a key itself."""
        result = await service.page_as(caller, page)
        return page_response(
            version, request, result, page, [api_key_body(k) for k in result.items])

    @router.get(
        "/api-keys/{key_id}", response_model=ApiKeyOut, summary="An API key (admins)",
        **requires("users:read", admin=True))
    async def get_api_key(key_id: KeyId, caller: Caller) -> Response:
        return JsonResponse(api_key_body(await service.get_as(caller, key_id)))

    @router.post(
        "/api-keys/{key_id}/revoke", response_model=ApiKeyOut,
        summary="Revoke an API key (admins)", **requires("users:write", admin=True))
    async def revoke_api_key(key_id: KeyId, caller: Caller) -> Response:
        """Refused from now on by this process, and by the others within the read cache's
        TTL (`ARCHWAY_READ_CACHE_TTL_SECONDS`). Revoking twice changes nothing."""
        return JsonResponse(api_key_body(await service.revoke_as(caller, key_id)))

    return router
