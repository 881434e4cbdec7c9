"""``python -m nas``: the ``nas`` command (what ``torchrun ... -m nas supernet train`` starts).

It runs :mod:`nas.cli` as ``python -m nas.cli`` would. The guard matters: workers started
with ``spawn`` import this module as ``__mp_main__`` and must not run the command again.
"""

import runpy

if __name__ == "__main__":
    runpy.run_module("nas.cli", run_name="__main__", alter_sys=True)
