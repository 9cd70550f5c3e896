"""``python -m girder_worker``: the ``girder-worker`` command."""

import sys

from .cli import main

sys.exit(main())
