"""Identity's REST bodies (the same in both API versions but for the page of users).

Request bodies forbid unknown fields (no mass assignment of ``id`` or ``roles``). Response
models only document the answers: the routes render JSON themselves.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from archway.identity.domain import EMAIL_MAX, EMAIL_PATTERN, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
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
