"""``python -m chatbus.cli``: the same as the ``chatbus`` command."""

import sys

from . import main

sys.exit(main())
