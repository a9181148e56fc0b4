"""`python -m edge_tan.cli`: the same as the `edge-tan` command."""

import sys

from . import main

sys.exit(main())
