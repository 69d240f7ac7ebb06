"""``python -m jobflow.launch -n 2 train.py``: a multi-process run on this machine (``jobflow launch``)."""

import sys

from jobflow._src.cli.launch import main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
