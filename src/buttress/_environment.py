"""The ``BUTTRESS_*`` settings' fields, and reading them only when the environment names one.

pydantic-settings, with the dotenv, argparse and csv modules it imports (about 6 MiB
of a process's memory), is imported only when a ``BUTTRESS_*`` variable is set or a
dotenv file is named. Otherwise every setting has its default, and a client uses
:data:`NO_SETTINGS`, which holds them (see :class:`._settings.ButtressSettings`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from ._config import FrozenConfig, check_base_url, defaults

__all__ = ["NO_SETTINGS", "PREFIX", "EnvironmentSettings"]

PREFIX = "BUTTRESS_"


class EnvironmentSettings(FrozenConfig):
    """The fields of :class:`~buttress.ButtressSettings` and their defaults.

    Examples:
        >>> NO_SETTINGS.max_redirects is None, NO_SETTINGS.api_key_header
        (True, 'X-API-Key')
    """

    base_url: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    connect_timeout: float | None = Field(default=None, gt=0)
    read_timeout: float | None = Field(default=None, gt=0)
    write_timeout: float | None = Field(default=None, gt=0)
    pool_timeout: float | None = Field(default=None, gt=0)
    total_timeout: float | None = Field(default=None, gt=0)
    api_key: SecretStr | None = None
    api_key_header: str = "X-API-Key"
    api_key_param: str | None = None
    bearer_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    verify_ssl: bool | None = None
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    min_tls_version: Literal["1.2", "1.3"] | None = None
    http2: bool | None = None
    proxy: SecretStr | None = None
    proxy_bypass: str | None = None
    user_agent: str | None = None
    max_redirects: int | None = Field(default=None, ge=0)
    follow_redirects: bool | None = None
    allow_cross_origin_redirects: bool | None = None
    api_version: str | None = None

    _base_url = field_validator("base_url")(check_base_url)


NO_SETTINGS = defaults(EnvironmentSettings)
"""What a client reads from an environment that sets no ``BUTTRESS_*`` variable."""
