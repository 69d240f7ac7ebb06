"""The ``jobflow`` command (``jobflow --help``; also ``python -m jobflow``)."""

import sys

from jobflow._src.cli.main import main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
