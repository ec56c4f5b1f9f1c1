"""``wait_until``: poll a condition until it holds, or fail naming what was awaited and for how long.

Every wait must fit in the test's own time limit (pytest-timeout, ``timeout`` in pyproject or a test's
``@pytest.mark.timeout``): tests/conftest.py records that limit here before each test, and a longer
wait is refused at once rather than cut short by the timeout with a less useful message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# seconds the running test may take (set by tests/conftest.py before each test; None: no limit known)
test_timeout: float | None = None


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    interval: float = 0.2,
    message: str | Callable[[], str] = "the condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition()`` every ``interval`` seconds until it returns something truthy, and return that.

    After ``timeout`` seconds raise an AssertionError naming ``message`` (a string, or a callable giving
    one, evaluated only then: a log's tail, the last answer) and the time waited. Exceptions of the
    types in ``ignore`` count as "not yet" (the last one is reported); any other one propagates, so an
    assertion inside ``condition`` (a process that exited) fails the wait at once.
    """
    if test_timeout is not None and timeout > test_timeout:
        raise ValueError(
            f"a wait of {timeout:g} s exceeds this test's timeout of {test_timeout:g} s: raise the "
            "test's @pytest.mark.timeout or wait less"
        )
    started = time.monotonic()
    deadline = started + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignore as exc:
            last_error = exc
        else:
            if value:
                return value
        now = time.monotonic()
        if now >= deadline:
            break
        time.sleep(min(interval, deadline - now))
    what = message() if callable(message) else message
    error = f" (last error: {last_error!r})" if last_error is not None else ""
    raise AssertionError(f"waited {time.monotonic() - started:.1f} s (limit {timeout:g} s) for {what}{error}")
