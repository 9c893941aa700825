"""``python -m pytest_edgeprof.cli``: the ``edgeprof`` command."""

import sys

from pytest_edgeprof.cli import main

sys.exit(main())
