"""Static checks: mypy (strict, run in CI over tests/) verifies these ``assert_type`` calls.

At run time they are cheap identity checks, so the file also runs under pytest.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from typing_extensions import assert_type

import buttress
from buttress.testing import DemoServer


class User(BaseModel):
    id: int
    name: str


def test_response_model_overloads_are_typed(demo: DemoServer) -> None:
    with buttress.Client(base_url=demo.url) as client:
        assert_type(client.get("/users/1"), buttress.Response)
        assert_type(client.get("/users/1", response_model=User), User)
        users = client.get("/users/linked", response_model=list[User])
        assert_type(users, list[User])
        assert_type(client.post("/users", json={"name": "x"}, response_model=dict), dict[Any, Any])
        assert users[0].name == "Ada Lovelace"


async def _async_usage(client: buttress.AsyncClient) -> None:
    assert_type(await client.get("/users/1"), buttress.Response)
    assert_type(await client.get("/users/1", response_model=User), User)
    assert_type(await client.patch("/users/1", json={}, response_model=list[User]), list[User])
