"""Study storage: every evaluation of a search in an evaluation log beside an Optuna study.

This package is the one owner of the study's format (see :mod:`nas.storage._study`):
the search loop writes through :class:`StudySession` and reads results back as
:class:`Record` objects (:meth:`StudySession.stored`, :func:`read_study`). A study and a
run folder have one owner at a time (:func:`lock_run_folder`, the session's own lock).
"""

from nas.storage._lock import OwnerLock, lock_run_folder, owner_line
from nas.storage._records import Record, StoredStudy
from nas.storage._study import StudySession, read_study, storage_url

__all__ = ["OwnerLock", "Record", "StoredStudy", "StudySession", "lock_run_folder", "owner_line",
           "read_study", "storage_url"]
