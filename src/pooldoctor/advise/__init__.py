"""The advisor: is this pool configuration safe for this server and this program?

``evaluate(config, limits, measured)`` gives findings PD401-PD404 and a recommended
configuration; ``read_limits(server_connection)`` reads a real server's limits.
"""

from __future__ import annotations

from .model import Allowance, Measured, PoolConfig, Recommendation, ServerLimits
from .server_settings import read_limits
from .verdicts import Advice, evaluate

__all__ = ["Advice", "Allowance", "Measured", "PoolConfig", "Recommendation", "ServerLimits",
           "evaluate", "read_limits"]
