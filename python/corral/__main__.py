"""`python -m corral` runs the command-line tool."""

import sys

from corral.cli import main

sys.exit(main())
