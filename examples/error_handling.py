"""Error handling: rate limits, timeouts and HTTP errors each get their own branch.

The same ``try`` block runs against four demo endpoints: one that answers, one
that says 429 with ``Retry-After``, one too slow for the timeout, and an unknown
user. Retries are off so each error surfaces at once.
Runs as-is against the bundled demo API: ``python examples/error_handling.py``.
"""

from __future__ import annotations

import logging
import sys

from buttress import Client, HTTPError, RateLimitError, TimeoutError
from buttress.testing import DemoServer

logger = logging.getLogger("error_handling")


def fetch(base_url: str, path: str) -> None:
    client = Client(base_url=base_url, auth=("bearer", "token"), retry=False, timeout=0.5)

    try:
        response = client.get(path)
        user = response.json()
        logger.info(f"{path}: got {user}")
    except RateLimitError as e:
        retry_after = e.retry_after  # Extracted from Retry-After header
        logger.warning(f"Rate limited, retry after {retry_after}s")
    except TimeoutError as e:
        logger.error(f"Request timed out: {e}")
    except HTTPError as e:
        logger.error(f"Request failed: {e.status_code} - {e.response.text}")
    finally:
        client.close()


def main(base_url: str) -> None:
    for path in ("/users/1", "/status/429?retry_after=7", "/slow?delay=2", "/users/123"):
        fetch(base_url, path)


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, format="%(levelname)-7s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    with DemoServer() as server:
        main(server.url)
