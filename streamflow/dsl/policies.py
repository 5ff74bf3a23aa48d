"""What happens to a record that fails: error policies for streams and tables.

A record fails when its key or value cannot be decoded or when user code (a predicate,
mapper, key selector or aggregator) raises. Three policies:

* :class:`DeadLetter` (the default): the record goes, with its original bytes and headers
  naming the error, to the dead-letter topic; the partition keeps moving.
* :class:`Retry`: the record goes to a retry topic and is processed again after a backoff,
  up to ``attempts`` times, then dead-lettered. For transient errors (a lookup service
  that times out). Retried records are processed after the records behind them, so per-key
  order is not kept for them.
* :class:`Stop`: the worker stops with a clear error and does not commit past the record;
  after a fix, a restart processes it again.

Undecodable records are always dead-lettered: no retry changes their bytes.

Example:
    >>> import streamflow
    >>> app = streamflow.App("shop")
    >>> orders = app.stream("orders", on_error=Retry(attempts=3, backoff=0.5))
    >>> Retry(attempts=3, backoff=0.5).delay(3)
    2.0
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeadLetter", "ErrorPolicy", "Retry", "Stop"]


@dataclass(frozen=True)
class DeadLetter:
    """Send failing records to the dead-letter topic and keep going (the default).

    >>> DeadLetter()
    DeadLetter()
    """


@dataclass(frozen=True)
class Retry:
    """Retry failing records through retry topics with exponential backoff.

    Attempt ``n`` (1-based) waits ``backoff * multiplier ** (n - 1)`` seconds, at most
    ``max_backoff``. Only exceptions of the ``retry_on`` types are retried; others, and
    records failing after ``attempts`` retries, are dead-lettered.

    >>> policy = Retry(attempts=4, backoff=1.0, max_backoff=5.0)
    >>> [policy.delay(n) for n in range(1, 5)]
    [1.0, 2.0, 4.0, 5.0]
    >>> policy.retries(TimeoutError("slow")), Retry(retry_on=(TimeoutError,)).retries(KeyError())
    (True, False)
    """

    attempts: int = 3
    backoff: float = 1.0
    multiplier: float = 2.0
    max_backoff: float = 300.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry needs attempts >= 1")
        if self.backoff < 0 or self.multiplier < 1:
            raise ValueError("Retry needs backoff >= 0 and multiplier >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1-based)."""
        return min(self.max_backoff, self.backoff * self.multiplier ** (attempt - 1))

    def retries(self, error: BaseException) -> bool:
        """True if ``error`` is one this policy retries."""
        return isinstance(error, self.retry_on)


@dataclass(frozen=True)
class Stop:
    """Stop the worker when a record fails; nothing past it is committed.

    >>> Stop()
    Stop()
    """


ErrorPolicy = DeadLetter | Retry | Stop
