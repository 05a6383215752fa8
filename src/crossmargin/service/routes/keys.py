"""API keys: the operator makes account keys (and further operator keys) and revokes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from crossmargin.service.errors import ApiError
from crossmargin.service.security import KeyRing, Principal, require_operator

__all__ = ["router"]

router = APIRouter(tags=["keys"])
Operator = Annotated[Principal, Depends(require_operator)]


class NewKey(BaseModel):
    """A key to make: an ``account`` key for ``account_id`` or an ``operator`` key."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["operator", "account"] = "account"
    account_id: StrictStr | None = None
    label: StrictStr = Field("", max_length=200)


def _keys(request: Request) -> KeyRing:
    keys: KeyRing = request.app.state.keys
    return keys


@router.post("/keys", summary="Make an API key", status_code=201)
def create_key(body: NewKey, request: Request, _: Operator) -> dict[str, Any]:
    """A new key, shown this once (only its digest is stored)."""
    key = _keys(request).create(body.role, body.account_id, body.label)
    return {"key": key, "prefix": key[:11], "role": body.role, "account_id": body.account_id}


@router.get("/keys", summary="List API keys")
def list_keys(request: Request, _: Operator) -> list[dict[str, Any]]:
    """Every key's prefix, role, account, label and whether it is revoked (never the key)."""
    return [
        {
            "prefix": row.prefix,
            "role": row.role,
            "account_id": row.account_id,
            "label": row.label,
            "created_at": row.created_at,
            "revoked": row.revoked,
        }
        for row in _keys(request).records.list_keys()
    ]


@router.delete("/keys/{prefix}", summary="Revoke API keys")
def revoke_key(prefix: str, request: Request, _: Operator) -> dict[str, Any]:
    """Revoke the keys with this prefix (the first 11 characters)."""
    if len(prefix) != 11 or not prefix.startswith("cm_"):
        raise ApiError(422, "prefix", "must be the key's first 11 characters (cm_...)")
    done = _keys(request).revoke(prefix)
    if done == 0:
        raise ApiError(404, "prefix", "no such key")
    return {"revoked": done}
