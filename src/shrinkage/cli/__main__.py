"""``python -m shrinkage.cli``: the ``shrinkage`` command."""

import sys

from . import main

sys.exit(main())
