"""``python -m nslang`` → :func:`nslang.cli.main`."""

import sys

from .cli import main

sys.exit(main())
