"""Optional features: a missing extra becomes one line naming the command that installs it.

The core install carries the risk engine and the command line; the ledger (SQLAlchemy, Alembic,
psycopg), Dask stress runs and the heat-map PNG (matplotlib) come with the extras ``ledger``,
``distributed`` and ``plots``. Their imports sit inside :func:`needs_extra`, so a user without
the extra reads ``crossmargin replay needs the ledger extra: pip install 'crossmargin[ledger]'``
instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from crossmargin.model.errors import CrossMarginError

__all__ = ["MissingExtraError", "needs_extra"]


class MissingExtraError(CrossMarginError):
    """A feature's optional packages are not installed (``module`` is the one that failed).

    A :class:`CrossMarginError` with an empty field path, so the command line prints it as one
    line with exit code 2, like any other input it cannot act on.
    """

    def __init__(self, feature: str, extra: str, module: str | None = None) -> None:
        super().__init__(
            "", f"{feature} needs the {extra} extra: pip install 'crossmargin[{extra}]'"
        )
        self.feature = feature
        self.extra = extra
        self.module = module


@contextmanager
def needs_extra(extra: str, feature: str) -> Iterator[None]:
    """Turn a failed import inside the block into :class:`MissingExtraError` for ``feature``.

    A module the block cannot find is taken to be one the extra installs, unless it is part of
    this package (a broken install, not a missing extra). A :class:`MissingExtraError` for the
    same extra raised inside is renamed to ``feature``: an outer caller (a command) names what
    the user asked for.
    """
    try:
        yield
    except MissingExtraError as error:
        if error.extra != extra:
            raise
        raise MissingExtraError(feature, extra, error.module) from None
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] == "crossmargin":
            raise
        raise MissingExtraError(feature, extra, error.name) from None
