"""The advisor's own reader of create_engine(...) keyword arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from pooldoctor.advise.inputs import InputError, apply_call, choose_call
from pooldoctor.advise.model import PoolConfig
from pooldoctor.advise.source import find_engine_calls

APP = '''\
import sqlalchemy as sa
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

POOL = 7

engine = create_engine(
    "mysql+pymysql://app:s3cret@db/app",
    pool_size=10, max_overflow=-1, pool_recycle=3600.0, pool_pre_ping=True, pool_timeout=5,
)

def make():
    return sa.create_engine(URL, pool_size=POOL, echo=True, **OPTIONS)

class Repo:
    async def start(self):
        self.engine = create_async_engine("postgresql+asyncpg://u@h/d", poolclass=NullPool)

create_engine_like = other(pool_size=99)   # not an engine call
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    f = tmp_path / "app.py"
    f.write_text(APP)
    (tmp_path / "broken.py").write_text("def (:\n")
    venv = tmp_path / ".venv" / "lib"
    venv.mkdir(parents=True)
    (venv / "vendored.py").write_text("create_engine('sqlite://', pool_size=1)\n")
    return tmp_path


def test_reads_literal_keywords(app: Path) -> None:
    calls, notes = find_engine_calls(str(app))
    assert [c.site.line for c in calls] == [7, 13, 17]  # the .venv is skipped
    first, second, third = calls
    assert first.settings == {"pool_size": 10, "max_overflow": -1, "pool_recycle": 3600.0,
                              "pre_ping": True, "pool_timeout": 5}
    assert first.backend == "mysql"
    assert first.url is not None and "s3cret" not in first.url and "***" in first.url
    assert first.site.function == "<module>"
    # names are not literals: skipped and said so, never guessed
    assert second.settings == {}
    assert second.skipped == ["pool_size", "**OPTIONS"]
    assert second.site.function == "make"
    assert third.settings == {"pool_class": "NullPool"}
    assert third.backend == "postgresql" and third.site.function == "Repo.start"
    assert any("broken.py" in n and "SyntaxError" in n for n in notes)


def test_choose_call(app: Path) -> None:
    calls, _ = find_engine_calls(str(app))
    with pytest.raises(InputError, match="3 create_engine\\(\\) calls with different pool"):
        choose_call(calls, str(app), None)
    chosen = choose_call(calls, str(app), 7)
    config = PoolConfig()
    apply_call(config, chosen)
    assert (config.pool_size, config.max_overflow, config.pre_ping) == (10, -1, True)
    assert config.source_of("pool_size") == "source"
    assert config.source_of("workers") == "default"
    assert config.site is not None and config.site.line == 7
    with pytest.raises(InputError, match="no create_engine\\(\\) call at line 8"):
        choose_call(calls, str(app), 8)


def test_no_engine_call(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("print('hello')\n")
    calls, _ = find_engine_calls(str(tmp_path))
    assert calls == []
    with pytest.raises(InputError, match="no create_engine\\(\\) call found"):
        choose_call(calls, str(tmp_path), None)
