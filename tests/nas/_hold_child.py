"""Child process of the lock tests: holds a run folder or a study, prints ``held``, sleeps.

Usage: ``_hold_child.py folder PATH`` or ``_hold_child.py study STORAGE_URL``.
"""

from __future__ import annotations

import sys
import time

from _resume_child import toy_problem

from nas.storage import StudySession, lock_run_folder


def main(kind: str, target: str) -> None:
    if kind == "folder":
        holder = lock_run_folder(target)
        holder.__enter__()
    else:
        problem = toy_problem()
        holder = StudySession(problem.space, problem.names, problem.directions,
                              [str(c) for c in problem.constraints], target, "held", resume=True)
    print("held", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
