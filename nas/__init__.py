"""Hardware-aware NAS: objectives, search engines, storage, CLI and Python API."""

from nas.errors import ConfigError, NasError

__all__ = ["ConfigError", "NasError"]
