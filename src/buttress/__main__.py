"""``python -m buttress``: the command line of :mod:`buttress._cli`."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
