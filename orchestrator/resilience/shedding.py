"""Load shedding at the API: a cap on requests in progress.

When the cap is reached, a new request is answered at once with 503 and `Retry-After` instead of
queueing behind work that would then time out. The gate only counts; the HTTP layer answers.
"""

from __future__ import annotations


class InflightGate:
    """`try_enter()` when a request arrives; `leave()` exactly once when it is done (if it entered)."""

    __slots__ = ("limit", "retry_after_s", "_in_flight", "shed")

    def __init__(self, limit: int, *, retry_after_s: int = 1) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if retry_after_s < 0:
            raise ValueError("retry_after_s must be >= 0")
        self.limit = limit
        # suggested `Retry-After` for a shed request, in whole seconds as the header carries it
        self.retry_after_s = retry_after_s
        self._in_flight = 0
        self.shed = 0  # requests refused so far

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_enter(self) -> bool:
        if self._in_flight < self.limit:
            self._in_flight += 1
            return True
        self.shed += 1
        return False

    def leave(self) -> None:
        if self._in_flight > 0:
            self._in_flight -= 1
