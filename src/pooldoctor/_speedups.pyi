"""Types of the C module built from _speedups.c (see runtime/hotpath.py)."""

from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

def configure(guard: Any, hold_type: type, on_collected: Callable[..., None],
              judged: dict[str, bool], ids: Iterator[int],
              get_running_loop: Callable[[], Any],
              task_name: Callable[[], str | None],
              capture: Callable[[int, int], tuple[Any, ...]],
              threads: dict[int, Any]) -> None: ...
def checkout(info: Any, record_dict: dict[str, Any], fairy: Any) -> Any: ...
def checkin(hold: Any) -> bool: ...
def user_stack(frame: FrameType, depth: int) -> tuple[Any, ...] | None: ...

class TxnHook:
    orig: Callable[[Any], None]
    def __init__(self, orig: Callable[[Any], None], begin: bool) -> None: ...
    def __call__(self, dbapi_connection: Any) -> None: ...
