"""``python -m jobflow``: the ``jobflow`` command."""

import sys

from jobflow._src.cli.main import main

sys.exit(main())
