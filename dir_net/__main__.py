import os
import sys
from pathlib import Path

# `python -m dir_net` puts the working directory first on sys.path. With an editable install an
# output folder there named `eval/` or `mano/` (dirnet eval writes `{run}/eval/`) would then shadow
# the packages as a namespace package; drop that entry unless it is the source checkout itself.
if sys.path and sys.path[0] in ("", os.getcwd()):
    if Path(sys.path[0] or ".").resolve() != Path(__file__).resolve().parents[1]:
        del sys.path[0]

from dir_net.cli import main  # noqa: E402

sys.exit(main())
