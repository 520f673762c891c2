"""``python -m bench.cli`` (as torchrun runs it): the ``bench`` command."""

import sys

from bench.cli import main

sys.exit(main())
