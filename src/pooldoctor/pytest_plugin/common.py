"""What the plugin's modules share: the modes and the warning class."""

from __future__ import annotations

import pytest

MODES = ("fail", "warn")


class ConnectionLeakWarning(pytest.PytestWarning):
    """A test or fixture left a database connection behind (``--pooldoctor-mode=warn``).

    Filter it or escalate it like any warning, e.g.
    ``-W error::pooldoctor.pytest_plugin.ConnectionLeakWarning``.
    """


ConnectionLeakWarning.__module__ = "pooldoctor.pytest_plugin"  # its public name
