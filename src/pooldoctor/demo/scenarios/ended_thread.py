"""A worker thread opens a connection and ends without closing it: nobody can give it back."""

import sqlite3
import threading
import time

TITLE = "a worker thread ends holding a connection (no threshold needed)"
EXPECT = ["PD110"]
OPTIONS = {"leak_threshold": 5}  # not reached: PD110 does not wait for it

RESULTS: list[sqlite3.Connection] = []  # the program keeps the worker's connection alive


def load(path: str) -> None:
    conn = sqlite3.connect(path)  # the leak: the thread ends with it still open
    conn.execute("SELECT 1").fetchone()
    RESULTS.append(conn)


def main(workdir: str) -> None:
    worker = threading.Thread(target=load, args=(f"{workdir}/demo.db",), name="loader-1")
    worker.start()
    worker.join()
    time.sleep(1.6)  # the watchdog passes every 0.5 s: the next two see the ended thread
    print(f"the program saw: worker {worker.name} ended, {len(RESULTS)} connection kept")
