"""Identity's REST bodies (the same in both API versions but for the page of users).

Request bodies forbid unknown fields (no mass assignment of ``id`` or ``roles``). Response
models only document the answers: the routes render JSON themselves.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from archway.identity.domain import (
    API_KEY_PLANS,
    CLIENT_ID_MAX,
    CLIENT_ID_MIN,
    CLIENT_ID_PATTERN,
    EMAIL_MAX,
    EMAIL_PATTERN,
    GRANT_TYPES,
    MACHINE_SCOPES,
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    REDIRECT_URI_MAX,
    REDIRECT_URI_PATTERN,
    REDIRECTS_MAX,
)
from archway.kernel.auth.principal import SCOPES
from archway.kernel.text import NO_CONTROL_PATTERN, NOT_BLANK_PATTERN

# The bodies only bound what is read (1024 characters); the domain checks each value and
# reports every invalid one at once. The schemas state the domain's rules exactly.
_EMAIL_SCHEMA: JsonDict = {"pattern": EMAIL_PATTERN, "maxLength": EMAIL_MAX}
_PASSWORD_SCHEMA: JsonDict = {
    "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX, "pattern": NO_CONTROL_PATTERN}
_NAME_SCHEMA: JsonDict = {"minLength": 1, "maxLength": NAME_MAX, "pattern": NOT_BLANK_PATTERN}


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=EMAIL_MAX, examples=["ada@example.com"],
                       json_schema_extra=_EMAIL_SCHEMA)
    password: str = Field(max_length=1024, examples=["correct horse battery staple"],
                          json_schema_extra=_PASSWORD_SCHEMA)
    name: str = Field(max_length=1024, examples=["Ada Lovelace"], json_schema_extra=_NAME_SCHEMA)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=EMAIL_MAX, json_schema_extra=_EMAIL_SCHEMA)
    password: str | None = Field(None, max_length=1024, json_schema_extra=_PASSWORD_SCHEMA)
    name: str | None = Field(None, max_length=1024, json_schema_extra=_NAME_SCHEMA)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    roles: list[str]
    created_at: datetime
    updated_at: datetime


class UserPageV1(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class UserPageV2(BaseModel):
    data: list[UserOut]
    next_cursor: str | None


# OAuth clients (admins) ----------------------------------------------------------------------

# What the domain refuses beyond each field's form, stated in the schema too: a public client
# has no secret for client_credentials, and the code grant needs a redirect URI.
_CLIENT_RULES: JsonDict = {"allOf": [
    {"if": {"properties": {"public": {"const": True}}, "required": ["public"]},
     "then": {"properties": {"grant_types": {"not": {"contains": {
         "const": "client_credentials"}}}}}},
    {"if": {"properties": {"grant_types": {"contains": {"const": "authorization_code"}}},
            "required": ["grant_types"]},
     "then": {"required": ["redirect_uris"], "properties": {"redirect_uris": {"minItems": 1}}}},
]}
# (each replaces the list's "items" schema whole: so each says "type" again)
_GRANT_SCHEMA: JsonDict = {"items": {"type": "string", "enum": [*sorted(GRANT_TYPES)]}}
_SCOPE_SCHEMA: JsonDict = {"items": {"type": "string", "enum": [*SCOPES]}}
_REDIRECT_SCHEMA: JsonDict = {"items": {
    "type": "string", "pattern": REDIRECT_URI_PATTERN, "maxLength": REDIRECT_URI_MAX}}


class ClientRegistration(BaseModel):
    """A new OAuth client. Its secret (none for a public client) is in the answer only."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_CLIENT_RULES)
    client_id: str = Field(
        min_length=CLIENT_ID_MIN, max_length=CLIENT_ID_MAX, examples=["nightly-report"],
        json_schema_extra={"pattern": CLIENT_ID_PATTERN})
    name: str = Field(max_length=1024, examples=["Nightly report"],
                      json_schema_extra=_NAME_SCHEMA)
    public: bool = Field(False, description="No secret: a browser page or a native app (PKCE).")
    grant_types: list[str] = Field(min_length=1, max_length=10, examples=[
        ["client_credentials"]], json_schema_extra=_GRANT_SCHEMA)
    scopes: list[str] = Field(default_factory=list, max_length=20, examples=[["reports:read"]],
                              json_schema_extra=_SCOPE_SCHEMA)
    redirect_uris: list[str] = Field(
        default_factory=list, max_length=REDIRECTS_MAX, json_schema_extra=_REDIRECT_SCHEMA)


class ClientPatch(BaseModel):
    """What an admin may change of a client: its name and its redirect URIs (exactly the
    list given). Its id, kind, grants, scopes and secret are not settable here."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=1024, json_schema_extra=_NAME_SCHEMA)
    redirect_uris: list[str] | None = Field(
        None, max_length=REDIRECTS_MAX, json_schema_extra=_REDIRECT_SCHEMA)


class ClientOut(BaseModel):
    client_id: str
    name: str
    public: bool
    grant_types: list[str]
    scopes: list[str]
    redirect_uris: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ClientCreated(ClientOut):
    client_secret: str | None = Field(
        description="Shown this once (only its SHA-256 digest is stored); null for a public "
        "client.")


class ClientPageV1(BaseModel):
    items: list[ClientOut]
    total: int
    limit: int
    offset: int


class ClientPageV2(BaseModel):
    data: list[ClientOut]
    next_cursor: str | None


class ApiKeyCreation(BaseModel):
    """A new API key for a machine consumer. The key is in the answer only."""

    model_config = ConfigDict(extra="forbid")
    consumer: str = Field(max_length=1024, examples=["Acme stock sync"],
                          description="Who the key is for (a name; shown in lists).",
                          json_schema_extra=_NAME_SCHEMA)
    plan: str = Field("default", description="The rate-limit plan the key is on.",
                      json_schema_extra={"enum": [*API_KEY_PLANS]})
    scopes: list[str] = Field(
        default_factory=list, max_length=20, examples=[["reports:read"]],
        description="Only scopes that act on no user's own resources.",
        json_schema_extra={"items": {"type": "string", "enum": [*sorted(MACHINE_SCOPES)]}})


class ApiKeyOut(BaseModel):
    id: str
    consumer: str
    plan: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(
        description="Written at most once a minute per key and process: a key used in the "
        "last minute may show an older time.")


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Send it as `X-API-Key`. Shown this once: only its SHA-256 "
                     "digest is stored.")


class ApiKeyPageV1(BaseModel):
    items: list[ApiKeyOut]
    total: int
    limit: int
    offset: int


class ApiKeyPageV2(BaseModel):
    data: list[ApiKeyOut]
    next_cursor: str | None
