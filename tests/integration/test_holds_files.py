"""Holds files of processes in different PID namespaces that share one runtime directory: the
same pid, different host names (``unshare --pid --uts --fork``), one file each; old
``<pid>.json`` names are still read."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pooldoctor.runtime.publish import SCHEMA, file_name, parse_file_name
from pooldoctor.server.attribution import load

from .test_fleet import _namespaces_reason, in_namespace

WRITER = """
import os, socket, sys
from pooldoctor.runtime.publish import Publisher
p = Publisher(None, sys.argv[1])
p._pid = os.getpid()
p.write([])
print(os.getpid(), socket.gethostname(), flush=True)
sys.stdin.read()
p.remove()
"""


def test_file_names() -> None:
    assert file_name(7, "web-3.example") == "7@web-3.example.json"
    assert file_name(7, "a/b c@d") == "7@a_b_c_d.json"
    assert file_name(7, "") == "7.json"
    assert parse_file_name("7@web-3.example.json") == (7, "web-3.example")
    assert parse_file_name("7@web-3.json.tmp") == (7, "web-3")
    assert parse_file_name("7.json") == (7, "")
    for name in ("x@h.json", "7@a@b.json", "7.txt", "@h.json"):
        assert parse_file_name(name) is None


def test_colliding_pids_in_namespaces_keep_one_file_each(tmp_path: Path) -> None:
    reason = _namespaces_reason()
    if reason is not None:
        pytest.skip(reason)
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    hosts = ["pdw17-ns-a", "pdw17-ns-b"]
    procs = [subprocess.Popen([*in_namespace(h), sys.executable, "-c", WRITER, str(rt)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for h in hosts]
    try:
        seen = [p.stdout.readline().split() if p.stdout else [] for p in procs]
        assert [s[1] for s in seen] == hosts
        assert seen[0][0] == seen[1][0]  # the same pid in each namespace
        pid = int(seen[0][0])
        assert sorted(os.listdir(rt)) == sorted(file_name(pid, h) for h in hosts)
        # an older version's <pid>.json of a third host is read too
        (rt / f"{pid}.json").write_text(json.dumps(
            {"schema": SCHEMA, "pid": pid, "hostname": "pdw17-old", "updated": time.time(),
             "holds": []}))
        published = load(str(rt))
        assert {(h, pid) for h in [*hosts, "pdw17-old"]} <= set(published)
        # a file whose name's host is not its writer's is not taken
        (rt / file_name(pid, "pdw17-liar")).write_text(json.dumps(
            {"schema": SCHEMA, "pid": pid, "hostname": "pdw17-other", "updated": time.time(),
             "holds": []}))
        assert ("pdw17-other", pid) not in load(str(rt), clean=False)
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
            p.wait(timeout=30)
    # each removed its own file at exit, not the other's
    assert not any(name.startswith(f"{pid}@pdw17-ns-") for name in os.listdir(rt))


def test_this_process_file_is_named_by_host_and_pid(tmp_path: Path) -> None:
    from pooldoctor.runtime.publish import Publisher

    p = Publisher(None, str(tmp_path))
    p._pid = os.getpid()
    p.write([])
    name = file_name(os.getpid(), socket.gethostname())
    assert os.listdir(tmp_path) == [name]
    assert (socket.gethostname(), os.getpid()) in load(str(tmp_path))
    p.remove()
    assert os.listdir(tmp_path) == []
