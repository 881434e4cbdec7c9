"""Study storage: every evaluation of a search as an Optuna trial in an RDB (resumable)."""

from nas.storage._study import Record, StudySession, records_arrays, storage_url

__all__ = ["Record", "StudySession", "records_arrays", "storage_url"]
