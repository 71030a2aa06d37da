"""Settings from the environment, and from a dotenv file when asked, through pydantic-settings.

Precedence, highest first (SPEC 8.2): per-call arguments, the client's own
arguments, environment variables (``BUTTRESS_*``), library defaults. The client's
configuration (``_client_config.ClientConfig``) applies it, option by option.

A dotenv file is read only when named: ``Client(env_file="prod.env")``,
``ButtressSettings(_env_file="prod.env")`` or ``BUTTRESS_ENV_FILE=prod.env``. A
``.env`` that happens to lie in the working directory changes nothing.

An SDK built on buttress uses its own prefix by subclassing, and may opt its
users into a ``.env`` file (``ACME_ENV_FILE`` then names another one)::

    class AcmeSettings(ButtressSettings):
        model_config = SettingsConfigDict(env_prefix="ACME_", env_file=".env")

    client = Client(settings=AcmeSettings())   # reads ACME_BASE_URL, ACME_API_KEY, ...
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from ._config import unknown_field
from ._environment import EnvironmentSettings
from ._exceptions import ConfigurationError

__all__ = ["ButtressSettings"]


class ButtressSettings(EnvironmentSettings, BaseSettings):
    """Client defaults read from ``BUTTRESS_*`` environment variables (and a dotenv file).

    ============================  ================================================
    variable                      meaning
    ============================  ================================================
    ``BUTTRESS_BASE_URL``         base URL when the client is given none
    ``BUTTRESS_TIMEOUT``          connect, read, write and pool timeouts (seconds)
    ``BUTTRESS_CONNECT_TIMEOUT``  connect timeout (likewise READ, WRITE, POOL)
    ``BUTTRESS_TOTAL_TIMEOUT``    deadline for a whole logical request
    ``BUTTRESS_API_KEY``          API key, sent in ``BUTTRESS_API_KEY_HEADER``
    ``BUTTRESS_API_KEY_HEADER``   header for the API key (``X-API-Key``)
    ``BUTTRESS_API_KEY_PARAM``    send the API key as this query parameter instead
    ``BUTTRESS_BEARER_TOKEN``     bearer token
    ``BUTTRESS_USERNAME``         basic auth user (with ``BUTTRESS_PASSWORD``)
    ``BUTTRESS_VERIFY_SSL``       ``false`` disables certificate checks (warned)
    ``BUTTRESS_CA_BUNDLE``        CA bundle file or directory to verify servers with
    ``BUTTRESS_CLIENT_CERT``      client certificate (PEM) for mTLS
    ``BUTTRESS_CLIENT_KEY``       its private key, when not in the certificate file
    ``BUTTRESS_MIN_TLS_VERSION``  ``1.2`` or ``1.3``
    ``BUTTRESS_HTTP2``            ``true`` enables HTTP/2 (needs ``buttress[http2]``)
    ``BUTTRESS_PROXY``            proxy URL for every request (``http``/``https``/``socks5``)
    ``BUTTRESS_PROXY_BYPASS``     comma-separated hosts that never use the proxy
    ``BUTTRESS_USER_AGENT``       User-Agent header
    ``BUTTRESS_MAX_REDIRECTS``    redirect limit
    ``BUTTRESS_FOLLOW_REDIRECTS`` follow redirects (``true``/``false``)
    ``BUTTRESS_API_VERSION``      API version sent in ``Accept-Version``
    ``BUTTRESS_ENV_FILE``         a dotenv file to read these variables from too
    ============================  ================================================

    No dotenv file is read unless one is named: ``ButtressSettings(_env_file=path)``
    (pydantic-settings' argument), ``BUTTRESS_ENV_FILE``, or a subclass's
    ``model_config`` (``env_file=".env"``: an SDK opting its users in). Variables
    set in the environment win over the file's. A file named but missing raises
    :class:`~buttress.ConfigurationError`; a subclass's default file may be absent.

    ``BUTTRESS_ALLOW_CROSS_ORIGIN_REDIRECTS=false`` refuses redirects that
    leave the origin. ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` are read
    too when no proxy is configured and ``trust_env`` is on.

    Examples:
        >>> import os
        >>> os.environ["BUTTRESS_READ_TIMEOUT"] = "12"
        >>> ButtressSettings().read_timeout
        12.0
        >>> del os.environ["BUTTRESS_READ_TIMEOUT"]

    A value that does not fit raises :class:`~buttress.ConfigurationError`
    naming the variable (the value itself is not shown: it may be a secret):

        >>> os.environ["BUTTRESS_MAX_REDIRECTS"] = "many"
        >>> try:
        ...     ButtressSettings()
        ... except ConfigurationError as e:
        ...     print(str(e)[:64])
        invalid ButtressSettings: max_redirects (BUTTRESS_MAX_REDIRECTS)
        >>> del os.environ["BUTTRESS_MAX_REDIRECTS"]
    """

    # Lax, unlike the other configurations: the environment's values arrive as strings.
    model_config = SettingsConfigDict(
        env_prefix="BUTTRESS_", env_file=None, extra="ignore", frozen=True, strict=False
    )

    # The fields are EnvironmentSettings', which clients use without pydantic-settings.

    if not TYPE_CHECKING:  # checkers keep the signature pydantic gives the fields

        def __init__(self, **values: Any) -> None:
            # Unrelated lines of .env are ignored (extra="ignore"); a misspelt argument is not.
            unknown = [
                name for name in values if name[:1] != "_" and name not in type(self).model_fields
            ]
            if unknown:
                problems = "; ".join(unknown_field(type(self), name) for name in unknown)
                raise ConfigurationError(f"invalid {type(self).__name__}: {problems}")
            prefix = str(type(self).model_config.get("env_prefix") or "").upper()
            named = values.get("_env_file") or os.environ.get(f"{prefix}ENV_FILE")
            if isinstance(named, str | os.PathLike):
                if not Path(named).is_file():  # pydantic-settings would skip it silently
                    raise ConfigurationError(
                        f"{type(self).__name__}: no dotenv file at {os.fspath(named)!r}"
                    )
                values["_env_file"] = named
            super().__init__(**values)
