"""`python -m diffaug`: the `diffaug` command."""

import sys

from .cli import main

sys.exit(main())
