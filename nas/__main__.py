"""``python -m nas`` (and ``torchrun ... -m nas supernet train ...``): the ``nas`` command line.

It runs :mod:`nas.cli` as ``python -m nas.cli`` would (``runpy``: nothing outside
``nas/cli`` imports the CLI, which stays the top floor).
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("nas.cli", run_name="__main__", alter_sys=True)
