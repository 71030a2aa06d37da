"""Developer sessions: ``uv run nox`` (tests on every Python, lint, typecheck, docs, examples).

Run one with ``uv run nox -s tests-3.12``, ``-s lint``, ``-s typecheck``, ``-s docs`` or
``-s examples``; arguments after ``--`` go to the tool (``uv run nox -s tests-3.10 -- -x -q``).
Every session installs the locked dependencies (``uv sync --locked``) into its own venv.

Finding the interpreters: nox looks for ``python3.10`` ... ``python3.13`` on ``PATH``. When
pyenv is installed, its versions count too, whether or not they are activated: the newest
``$PYENV_ROOT/versions/3.X.*`` (``~/.pyenv`` by default) is linked as ``python3.X`` into
``.nox/pythons``, which goes first on ``PATH`` for this run. Only when neither has a version
does nox ask uv to download one (which needs the internet); a missing interpreter then
skips that session (an error when ``CI`` is set).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs", "examples"]

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
ROOT = Path(__file__).parent


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name))


def _link_pyenv_pythons() -> None:
    """Make pyenv's installed versions findable as ``python3.X`` (see the module docstring)."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not versions.is_dir():
        return
    links = ROOT / ".nox" / "pythons"
    for version in PYTHONS:
        found = [
            path / "bin" / f"python{version}"
            for path in versions.glob(f"{version}.*")
            if re.fullmatch(r"\d+\.\d+\.\d+", path.name)  # 3.12.1, not 3.12-dev or a venv
        ]
        found = [path for path in found if path.exists()]
        if not found:
            continue
        newest = max(found, key=lambda path: _version_key(path.parent.parent))
        links.mkdir(parents=True, exist_ok=True)
        link = links / f"python{version}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(newest)
    if links.is_dir():
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"


_link_pyenv_pythons()


def _sync(session: nox.Session, *groups: str) -> None:
    """Install the locked dependencies (all extras, the dev group, ``groups``) into the venv."""
    venv = Path(session.virtualenv.location)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--all-extras",
        "--no-default-groups",
        "--group=dev",
        *(f"--group={group}" for group in groups),
        f"--python={python}",
        env={"UV_PROJECT_ENVIRONMENT": str(venv)},
        external=True,
    )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite (the README's command) on every supported Python."""
    _sync(session, "docs")  # tests/docs/test_pages.py runs the docs' examples
    session.run("pytest", "-n", "auto", "--cov-fail-under=90", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    _sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict (src, tests, examples, benchmarks) and basedpyright (src, typing file)."""
    _sync(session)
    session.run("mypy", *session.posargs)
    session.run("basedpyright")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site builds without a warning (``mkdocs build --strict``)."""
    _sync(session, "docs")
    site = Path(session.create_tmp()) / "site"
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(site),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def examples(session: nox.Session) -> None:
    """Every script in examples/ and every Python block in docs/ runs against the demo API."""
    _sync(session, "docs")
    session.run(
        "pytest",
        "tests/docs/test_examples.py",
        "tests/docs/test_pages.py",
        "--no-cov",
        "-p",
        "no:cacheprovider",
        *session.posargs,
    )
