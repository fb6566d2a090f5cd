"""Flask's tutorial (flaskr/db.py): the connection lives on `g`, closed by a teardown hook."""
import sqlite3

import click
from flask import current_app, g


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(
            current_app.config["DATABASE"],
            detect_types=sqlite3.PARSE_DECLTYPES,
        )
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(e=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db():
    db = get_db()
    with current_app.open_resource("schema.sql") as f:
        db.executescript(f.read().decode("utf8"))


@click.command("init-db")
def init_db_command():
    init_db()
    click.echo("Initialized the database.")


def init_app(app):
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)


def leaky_view():
    # the same app, written without the tutorial's care
    conn = sqlite3.connect(current_app.config["DATABASE"])  # expect: PD201
    posts = conn.execute("SELECT * FROM post").fetchall()
    return {"posts": posts}
