"""Identity over REST: thin routes that parse, call the service and shape the answer.

No ``from __future__ import annotations``: FastAPI must resolve the route-local dependency
annotations at definition time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from archway.identity.domain import OAuthClient, User
from archway.identity.ports import ClientChanges
from archway.identity.rest_models import (
    ClientCreated,
    ClientOut,
    ClientPageV1,
    ClientPageV2,
    ClientPatch,
    ClientRegistration,
    Registration,
    UserOut,
    UserPageV1,
    UserPageV2,
    UserPatch,
)
from archway.identity.service import ClientSpec, IdentityService, UserChanges
from archway.kernel.auth.principal import Principal
from archway.kernel.http.fast_lane import FastRoute, plain_query
from archway.kernel.http.guard import Owner, admitted, current_principal, requires
from archway.kernel.http.responses import (
    JsonResponse,
    page_request_dependency,
    page_response,
    timestamp,
)
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.pagination import PageRequest


def user_body(user: User) -> dict[str, Any]:
    return {
        "id": user.id, "email": user.email, "name": user.name, "roles": sorted(user.roles),
        "created_at": timestamp(user.created_at), "updated_at": timestamp(user.updated_at),
    }


def client_body(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id, "name": client.name, "public": client.is_public,
        "grant_types": sorted(client.grant_types), "scopes": sorted(client.scopes),
        "redirect_uris": list(client.redirect_uris), "created_at": timestamp(client.created_at),
        "revoked_at": timestamp(client.revoked_at) if client.revoked_at else None,
    }


UserId = Annotated[str, Path(max_length=64, description="The user's id (UUIDv7).")]
ClientId = Annotated[str, Path(max_length=64, description="The client's id.")]
Caller = Annotated[Principal, Depends(current_principal)]


def build_router(
    version: ApiVersion,
    service: IdentityService[Any],
    route_class: type[APIRoute],
    *,
    fast_routes: list[FastRoute] | None = None,
) -> APIRouter:
    """The user routes of one API version; ``GET /users/me`` also gets a fast handler (see
    :mod:`archway.kernel.http.fast_lane`), added to ``fast_routes`` when a list is given."""
    router = APIRouter(prefix=version.prefix, route_class=route_class, tags=["users"])
    page_params = page_request_dependency(version, cursor_arity=1)

    @router.post("/users", status_code=201, response_model=UserOut, summary="Register")
    async def register(body: Registration) -> Response:
        """Anyone may register; the new user is a customer."""
        user = await service.register(body.email, body.password, body.name)
        return JsonResponse(
            user_body(user), 201, headers={"Location": f"{version.prefix}/users/{user.id}"}
        )

    @router.get("/users/me", response_model=UserOut, summary="Your own user", **requires("profile"))
    async def me(caller: Caller) -> Response:
        return JsonResponse(user_body(await service.me(caller)))

    async def fast_me(request: Request, _params: dict[str, str]) -> Response | None:
        caller = await admitted(route_class, request, "profile")
        if caller is None or plain_query(request, ()) is None:
            return None
        return await me(caller)

    @router.get(
        "/users", response_model=UserPageV1 if version is ApiVersion.V1 else UserPageV2,
        summary="List users (admins)", **requires("users:read"),
    )
    async def list_users(
        request: Request, caller: Caller, page: Annotated[PageRequest, Depends(page_params)]
    ) -> Response:
        result = await service.list_users(caller, page)
        return page_response(version, request, result, page, [user_body(u) for u in result.items])

    @router.get("/users/{user_id}", response_model=UserOut, summary="A user",
                **requires(owner=Owner("user_id", "profile", "users:read")))
    async def get_user(user_id: UserId, caller: Caller) -> Response:
        """The user itself (`profile`) or an admin (`users:read`)."""
        return JsonResponse(user_body(await service.get_user(caller, user_id)))

    @router.patch("/users/{user_id}", response_model=UserOut, summary="Change a user",
                  **requires(owner=Owner("user_id", "profile", "users:write")))
    async def patch_user(user_id: UserId, body: UserPatch, caller: Caller) -> Response:
        """The user itself (`profile`) or an admin (`users:write`). Roles are not settable."""
        changes = UserChanges(name=body.name, email=body.email, password=body.password)
        return JsonResponse(user_body(await service.update_user(caller, user_id, changes)))

    @router.delete("/users/{user_id}", status_code=204, summary="Delete a user",
                   **requires(owner=Owner("user_id", "profile", "users:write")))
    async def delete_user(user_id: UserId, caller: Caller) -> Response:
        """The user itself (`profile`) or an admin (`users:write`); afterwards 404 for all."""
        await service.delete_user(caller, user_id)
        return Response(status_code=204)

    @router.post(
        "/oauth-clients", status_code=201, response_model=ClientCreated, tags=["oauth-clients"],
        summary="Register an OAuth client (admins)", **requires("users:write", admin=True))
    async def create_client(body: ClientRegistration, caller: Caller) -> Response:
        """A confidential client's `client_secret` is in this answer only: it is stored as
        its SHA-256 digest."""
        client, secret = await service.create_client(caller, ClientSpec(
            body.client_id, body.name, public=body.public,
            grant_types=frozenset(body.grant_types), scopes=frozenset(body.scopes),
            redirect_uris=tuple(body.redirect_uris)))
        return JsonResponse(
            {**client_body(client), "client_secret": secret}, 201,
            headers={"Location": f"{version.prefix}/oauth-clients/{client.client_id}"})

    @router.get(
        "/oauth-clients", tags=["oauth-clients"],
        response_model=ClientPageV1 if version is ApiVersion.V1 else ClientPageV2,
        summary="List OAuth clients (admins)", **requires("users:read", admin=True))
    async def list_clients(
        request: Request, caller: Caller, page: Annotated[PageRequest, Depends(page_params)]
    ) -> Response:
        """Every client, revoked ones included, by id; never a secret."""
        result = await service.list_clients_as(caller, page)
        return page_response(
            version, request, result, page, [client_body(c) for c in result.items])

    @router.get(
        "/oauth-clients/{client_id}", response_model=ClientOut, tags=["oauth-clients"],
        summary="An OAuth client (admins)", **requires("users:read", admin=True))
    async def get_client(client_id: ClientId, caller: Caller) -> Response:
        return JsonResponse(client_body(await service.get_client(caller, client_id)))

    @router.post(
        "/oauth-clients/{client_id}/revoke", response_model=ClientOut, tags=["oauth-clients"],
        summary="Revoke an OAuth client (admins)", **requires("users:write", admin=True))
    async def revoke_client(client_id: ClientId, caller: Caller) -> Response:
        """It can no longer authenticate, and the tokens it got for itself stop working.
        Revoking twice changes nothing."""
        return JsonResponse(client_body(await service.revoke_client_as(caller, client_id)))

    @router.patch(
        "/oauth-clients/{client_id}", response_model=ClientOut, tags=["oauth-clients"],
        summary="Change an OAuth client (admins)", **requires("users:write", admin=True))
    async def patch_client(client_id: ClientId, body: ClientPatch, caller: Caller) -> Response:
        """Its name and redirect URIs (the list given replaces the old one; a client of the
        authorization code grant keeps at least one). A revoked client is a 409."""
        changes = ClientChanges(
            name=body.name,
            redirect_uris=None if body.redirect_uris is None else tuple(body.redirect_uris))
        return JsonResponse(client_body(await service.update_client_as(caller, client_id,
                                                                       changes)))

    @router.post(
        "/oauth-clients/{client_id}/rotate-secret", response_model=ClientCreated,
        tags=["oauth-clients"], summary="Give an OAuth client a new secret (admins)",
        **requires("users:write", admin=True))
    async def rotate_client_secret(client_id: ClientId, caller: Caller) -> Response:
        """The new `client_secret` is in this answer only; the old one stops working (in other
        processes within the read cache's TTL). Tokens already issued stay valid until they
        expire. A public client (no secret) or a revoked one is a 409."""
        client, secret = await service.rotate_client_secret_as(caller, client_id)
        return JsonResponse({**client_body(client), "client_secret": secret})

    if fast_routes is not None:
        fast_routes.append(FastRoute(f"{version.prefix}/users/me", fast_me))
    return router
