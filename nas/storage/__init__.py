"""Study storage: every evaluation of a search as an Optuna trial in an RDB (resumable).

This package is the one owner of the study's trial format (see :mod:`nas.storage._study`):
the search loop writes through :class:`StudySession` and reads results back as
:class:`Record` objects (:meth:`StudySession.stored`, :func:`read_study`).
"""

from nas.storage._study import Record, StoredStudy, StudySession, read_study, storage_url

__all__ = ["Record", "StoredStudy", "StudySession", "read_study", "storage_url"]
