"""A background group-commit writer: callers submit commands from any thread and get futures;
one thread takes whatever has queued (up to ``max_batch``) and runs it through
:meth:`Ledger.execute` as one transaction.

A future resolves only after its command's transaction committed: to the :class:`Receipt`, or
with the :class:`CrossMarginError` that refused it (or the error that failed the whole
transaction, which then changed nothing).
While the writer runs it owns the ledger: read the ledger after :meth:`Writer.close`.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from crossmargin.ledger.commands import Ledger, Receipt
from crossmargin.ledger.requests import Command
from crossmargin.model import CrossMarginError

__all__ = ["Writer"]

_Item = tuple[Command, "Future[Receipt]"]


class Writer:
    """Group commit over ``ledger``: :meth:`submit` many, each acknowledged after its commit."""

    def __init__(self, ledger: Ledger, max_batch: int = 1024) -> None:
        if max_batch < 1:
            raise CrossMarginError("max_batch", f"must be >= 1, got {max_batch}")
        self.ledger = ledger
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="crossmargin-writer", daemon=True)
        self._thread.start()

    def submit(self, command: Command) -> Future[Receipt]:
        """Queue ``command``; the future resolves once it is committed or refused."""
        if self._closed:
            raise CrossMarginError("writer", "closed")
        future: Future[Receipt] = Future()
        self._queue.put((command, future))
        return future

    def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Item]) -> None:
        try:
            results = self.ledger.execute([command for command, _ in batch])
        except Exception as error:
            for _, future in batch:
                future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, CrossMarginError):
                future.set_exception(result)
            else:
                future.set_result(result)
