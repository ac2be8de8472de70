import os
import sys
from pathlib import Path

# `python -m dir_net` puts the working directory first on sys.path. With an editable install an
# output folder there named `eval/` or `mano/` (dirnet eval writes `{run}/eval/`) would then shadow
# the packages as a namespace package; drop such entries unless they are the source checkout itself.
_CHECKOUT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path
               if p not in ("", os.getcwd()) or Path(p or ".").resolve() == _CHECKOUT]

from dir_net.cli import main  # noqa: E402

sys.exit(main())
