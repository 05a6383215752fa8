"""The one error type the library raises for bad input."""

from __future__ import annotations

__all__ = ["CrossMarginError"]


class CrossMarginError(ValueError):
    """Bad input: names the field path (``accounts[0].positions[1].qty``) and the reason.

    Raised before anything is changed, so a caller can report it and carry on.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)

    def at(self, prefix: str) -> CrossMarginError:
        """Return the same error with ``prefix`` put before its field path."""
        if not prefix:
            return self
        sep = "" if not self.path or self.path.startswith("[") else "."
        return CrossMarginError(f"{prefix}{sep}{self.path}" if self.path else prefix, self.reason)
