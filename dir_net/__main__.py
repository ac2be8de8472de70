import sys

from dir_net.cli import main

sys.exit(main())
