"""One base for the errors a user can act on, and what each kind means at the edges.

Domain code raises these without knowing who called it; the command line turns any of them into a one-line
``Error: ...`` and the class's exit code (``cli.IntentVisionGroup``), the HTTP API into the class's status
with the usual ``{"detail": ..., "errors": [...]}`` body (the handler in ``api.app``). A new error therefore
needs no ``try``/``except`` at either edge, only the right base. The kinds also keep the built-in base their
callers caught before this hierarchy existed (``ValueError``, ``LookupError``), so older ``except`` clauses
still see them.
"""

from __future__ import annotations


class IntentVisionError(Exception):
    """Something the product refuses or cannot do, with a message written for the person who asked."""

    exit_code: int = 1
    """Exit status of the ``intentvision`` command that hit it."""
    http_status: int = 500
    """Status of the API response that reports it."""
    retry_after: int | None = None
    """Seconds after which the same request may succeed (an HTTP ``Retry-After``); None if it will not."""


class InputError(IntentVisionError, ValueError):
    """The caller's input (a file, a body, an option, a name) cannot be taken; the caller must fix it."""

    http_status = 422


class ConfigurationError(IntentVisionError, ValueError):
    """An operator's configuration file cannot be used; the request itself was fine."""

    http_status = 500


class NotFoundError(IntentVisionError, LookupError):
    """The named thing (a key, a channel, a rule) does not exist where the caller may look."""

    http_status = 404


class UnavailableError(IntentVisionError):
    """A resource is busy or down right now; the same request may succeed shortly."""

    http_status = 503
    retry_after = 1


class StorageUnavailable(UnavailableError):
    """The home folder cannot be written (disk full, read-only, no permission): nothing was half-written,
    and the same request succeeds once the operator frees space or fixes the mount."""

    retry_after = 30

    @classmethod
    def from_os_error(cls, exc: OSError, home: object) -> StorageUnavailable:
        """Named by the file the OS names, else by the home folder the write went to."""
        where = exc.filename or f"under {home}"
        return cls(f"cannot write {where}: {exc.strerror or exc} (free space or fix permissions, then retry)")
