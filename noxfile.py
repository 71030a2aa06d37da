"""Developer sessions: `uv run nox -s tests-3.12`, `uv run nox -s lint`, ..."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _sync(session: nox.Session) -> None:
    """Install the locked dependencies (all extras, dev group) into the session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        f"--python={session.python}",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on every supported Python."""
    _sync(session)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    _sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src, tests, examples and benchmarks."""
    _sync(session)
    session.run("mypy")


@nox.session
def examples(session: nox.Session) -> None:
    """Every example runs against the bundled demo API."""
    _sync(session)
    session.run("pytest", "tests/test_examples.py", "--no-cov")
