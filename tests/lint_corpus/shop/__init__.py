"""A small shop application spread over several modules (the project-wide pass)."""
from .database import get_dbconn as connect_default  # re-exported, used by api/reports.py
