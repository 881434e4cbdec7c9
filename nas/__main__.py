"""``python -m nas``: the ``nas`` command (what ``torchrun ... -m nas supernet train`` starts).

The guard matters: workers started with ``spawn`` import this module as ``__mp_main__``
and must not run the command again.
"""

import sys

from nas.cli import main

if __name__ == "__main__":
    sys.exit(main())
