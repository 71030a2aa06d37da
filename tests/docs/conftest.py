"""The docs and examples configure logging as a reader would; no later test sees it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Pages configure logging as a reader would (levels, handlers); no later test sees it."""
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    saved = [(lg, lg.level, list(lg.handlers), list(lg.filters), lg.propagate) for lg in loggers]
    yield
    for lg, level, handlers, filters, propagate in saved:
        lg.setLevel(level)
        lg.handlers[:], lg.filters[:], lg.propagate = handlers, filters, propagate
    for name in set(logging.root.manager.loggerDict) - {lg.name for lg in loggers}:
        made = logging.getLogger(name)  # a logger a page created: back to a blank one
        made.setLevel(logging.NOTSET)
        made.handlers.clear()
        made.filters.clear()
        made.propagate = True
