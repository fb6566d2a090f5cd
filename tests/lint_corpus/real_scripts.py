"""Scripts and migrations: run once, close explicitly."""
import argparse
import sqlite3
import sys

import psycopg2


def main(argv=None):
    args = argparse.ArgumentParser().parse_args(argv)
    conn = psycopg2.connect(args.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("ALTER TABLE t ADD COLUMN x int")
    finally:
        conn.close()
    return 0


def dump(path, out):
    conn = sqlite3.connect(path)
    try:
        for line in conn.iterdump():
            out.write(line + "\n")
    finally:
        conn.close()


def dump_leaky(path):
    conn = sqlite3.connect(path)  # expect: PD201
    for line in conn.iterdump():
        sys.stdout.write(line + "\n")
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
