"""`python -m eval score ...` / `python -m eval plot-pck ...`."""

import sys

from eval.cli import main

sys.exit(main())
