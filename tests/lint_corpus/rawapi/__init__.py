"""A raw-SQL API in the shape of hotosm/raw-data-api: a Database class that owns its connection,
and service classes that keep one on self (never imported or run)."""
