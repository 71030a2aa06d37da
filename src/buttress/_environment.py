"""The ``BUTTRESS_*`` settings' fields, and reading them only when the environment names one.

pydantic-settings, with the dotenv, argparse and csv modules it imports (about 6 MiB
of a process's memory), is imported only when a ``BUTTRESS_*`` variable is set or a
dotenv file is named. Otherwise every setting has its default, and a client uses
:data:`NO_SETTINGS`, which holds them (see :class:`._settings.ButtressSettings`).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from ._config import FrozenConfig, check_base_url

__all__ = ["NO_SETTINGS", "EnvironmentSettings", "read_environment"]

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


NO_SETTINGS = EnvironmentSettings()
"""What a client reads from an environment that sets no ``BUTTRESS_*`` variable."""


def read_environment(env_file: str | os.PathLike[str] | None) -> EnvironmentSettings:
    """The ``BUTTRESS_*`` settings, from the environment and ``env_file``.

    Variable names are matched without regard to case, as pydantic-settings does.

    Examples:
        >>> os.environ["BUTTRESS_MAX_REDIRECTS"] = "3"
        >>> read_environment(None).max_redirects
        3
        >>> del os.environ["BUTTRESS_MAX_REDIRECTS"]
        >>> read_environment(None) is NO_SETTINGS  # when none is set: nothing to parse
        True
    """
    if env_file is None and not any(name.upper().startswith(PREFIX) for name in os.environ):
        return NO_SETTINGS
    from ._settings import ButtressSettings

    # pydantic-settings' own argument, which the pydantic mypy plugin leaves out of __init__.
    named: dict[str, Any] = {} if env_file is None else {"_env_file": env_file}
    return ButtressSettings(**named)
