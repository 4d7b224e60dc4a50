"""``python -m pixtag_demo``: the ``pixtag-demo`` command."""

import sys

from pixtag_demo.cli import main

if __name__ == "__main__":
    sys.exit(main())
