"""The facade against the real demo API: one test body for sync and async."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel

import buttress
from tests.conftest import Either

pytestmark = pytest.mark.anyio


class User(BaseModel):
    id: int
    name: str
    email: str


async def test_get_returns_buttress_response(client: Either) -> None:
    response = await client.get("/users/1")
    assert isinstance(response, buttress.Response)
    assert isinstance(response, httpx.Response)
    assert response.ok
    assert response.is_success
    assert response.json()["name"] == "Ada Lovelace"


async def test_response_model_parses(client: Either) -> None:
    user = await client.get("/users/2", response_model=User)
    assert user == User(id=2, name="Grace Hopper", email="grace.hopper@example.com")


async def test_not_found_raises(client: Either) -> None:
    with pytest.raises(buttress.NotFoundError) as caught:
        await client.get("/users/999")
    assert caught.value.status_code == 404
    assert "user 999 not found" in str(caught.value)
