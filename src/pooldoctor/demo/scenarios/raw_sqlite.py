"""Raw sqlite3 connections, no SQLAlchemy: a helper object per test case, each with its own
connection that nobody closes, and an audit helper that drops its connection."""

import gc
import sqlite3
import time

TITLE = "raw driver connections: one per helper object, never closed"
EXPECT = ["PD108", "PD102", "PD101", "PD105"]
OPTIONS = {"many_threshold": 5, "leak_threshold": 0.2}

# like a test runner, the program keeps its case objects until it ends
CASES: list["CaseHelper"] = []


class CaseHelper:
    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)  # the leak: one connection per helper, never closed

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM cases").fetchone()[0])


def audit(path: str) -> int:
    conn = sqlite3.connect(path)  # dropped without close()
    return int(conn.execute("SELECT 1").fetchone()[0])


def main(workdir: str) -> None:
    path = f"{workdir}/demo.db"
    setup = sqlite3.connect(path)
    with setup:
        setup.execute("CREATE TABLE IF NOT EXISTS cases (id INTEGER PRIMARY KEY)")
        setup.executemany("INSERT INTO cases DEFAULT VALUES", [()] * 3)
    setup.close()
    CASES.extend(CaseHelper(path) for _ in range(6))  # six test cases, six connections
    rows = [h.count() for h in CASES]
    audit(path)
    gc.collect()
    time.sleep(0.5)  # longer than the leak threshold
    print(f"the program saw: {len(CASES)} helpers, {len(CASES)} connections, rows {rows}")
