"""Responses parsed into Pydantic models, request bodies from models.

Runs as-is against the bundled demo API: ``python examples/pydantic_models.py``.
``EmailStr`` needs the ``email-validator`` package (``pip install 'pydantic[email]'``).
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, EmailStr

from buttress import AsyncClient
from buttress.testing import DemoServer


class User(BaseModel):
    id: int
    name: str
    email: EmailStr


class CreateUserRequest(BaseModel):
    name: str
    email: EmailStr


async def main(base_url: str) -> None:
    async with AsyncClient(base_url=base_url) as client:
        # Response automatically validated and parsed to User model
        user = await client.get("/users/1", response_model=User)
        print(user.name)  # Fully typed, IDE autocomplete works

        # Request body from Pydantic model
        new_user_request = CreateUserRequest(name="Jane", email="jane@example.com")
        created_user = await client.post("/users", json=new_user_request, response_model=User)
        print(created_user)


if __name__ == "__main__":
    with DemoServer() as server:
        asyncio.run(main(server.url))
