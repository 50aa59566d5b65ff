"""EphemeralStorage bounds the total a function writes to its TMPDIR, not only each file.

As root with loop devices, each environment's TMPDIR is its own loop-mounted ext4 file
system of EphemeralStorage MB: writing past it fails with ENOSPC inside the function,
other environments and the platform are unaffected, the next environment starts empty,
and nothing stays mounted or bound to a loop device once Portico stops (or, after a
crash, once the next Portico starts). Elsewhere TMPDIR is a directory and only each
file is capped (tests/e2e/test_isolation.py covers that limit).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import Server, boto_client, create_function, stop_and_check, unique, wait_active

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/dev/loop-control").exists(),
    reason="a TMPDIR file system per environment needs root and loop devices (/dev/loop-control); "
           "elsewhere TMPDIR is a directory and only RLIMIT_FSIZE applies",
)

# Writes real data in 1 MB chunks, as a function would; reports each file's outcome
# with the errno Node.js saw.
FILLER = r"""
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MB = 1024 * 1024;
const chunk = Buffer.alloc(MB, 0x61);
const tmp = os.tmpdir();

const write = (name, mb) => {
  let done = 0;
  let fd;
  try {
    fd = fs.openSync(path.join(tmp, name), 'w');
    for (; done < mb; done++) fs.writeSync(fd, chunk);
    return { ok: true, mb: done };
  } catch (e) {
    return { ok: false, code: e.code, errno: e.errno, mb: done };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
};
const space = () => {
  const s = fs.statfsSync(tmp);
  return { total_mb: (s.blocks * s.bsize) / MB, free_mb: (s.bavail * s.bsize) / MB };
};
const state = () => ({ tmp, pid: process.pid, entries: fs.readdirSync(tmp).sort(), ...space() });

export const handler = async (event) => {
  switch (event.op) {
    case 'fill':
      return { results: event.files.map((mb, i) => write(`file-${i}`, mb)), ...state() };
    case 'list':
      return state();
    case 'hold': {
      // Writes, then stays busy so that a concurrent invocation gets another environment.
      const results = [write('mine', event.mb), write('.hidden', 1)];
      await new Promise((r) => setTimeout(r, event.ms));
      return { results, ...state() };
    }
    case 'hang':
      write('data', event.mb);
      write('.hidden', 1);
      fs.mkdirSync(path.join(tmp, 'dir'));
      await new Promise(() => setInterval(() => {}, 1000));
  }
  return { unknown: event.op };
};
"""

TMPDIR_LINE = re.compile(r"sandbox: TMPDIR: a loop-mounted ext4 file system .*\(images in ([^)]+)\)")


def start(tmp_path: Path, name: str) -> tuple[Server, Path]:
    """A server and the directory of its TMPDIR images (from its start-up line)."""
    server = Server(tmp_path / f"{name}-data", tmp_path / f"{name}.log").start()
    log = server.log_path.read_text(errors="replace")
    m = TMPDIR_LINE.search(log)
    assert m, f"TMPDIR is not a loop-mounted file system on this host:\n{server.log_tail()}"
    return server, Path(m.group(1))


def mounts_under(d: Path) -> list[str]:
    points = [line.split(" ")[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(f"{d}/")]


def loops_under(d: Path) -> list[str]:
    """`losetup -a` lines whose backing file is under `d`."""
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"({d}/" in line]


def invoke(lam, name: str, event: dict):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return r.get("FunctionError"), json.loads(r["Payload"].read() or b"null")


def ok(lam, name: str, event: dict) -> dict:
    err, body = invoke(lam, name, event)
    assert err is None, body
    return body


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ephemeral")
    loops_before = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    server, images = start(tmp, "main")
    try:
        yield server, boto_client(server.endpoint, "lambda"), images
        stop_and_check(server)
        # Nothing of this instance stays mounted or bound to a loop device.
        assert not mounts_under(images), mounts_under(images)
        assert not loops_under(images), (loops_before, loops_under(images))
        assert not images.exists() or not any(images.rglob("*.img"))
    finally:
        server.kill()


def test_512_mb_holds_two_200_mb_files_and_the_third_gets_enospc(env):
    server, lam, images = env
    name = unique("eph512")
    create_function(lam, name, {"index.mjs": FILLER}, Timeout=30, EphemeralStorage={"Size": 512})
    r = ok(lam, name, {"op": "fill", "files": [200, 200, 200]})
    first, second, third = r["results"]
    assert first == {"ok": True, "mb": 200} and second == {"ok": True, "mb": 200}, r
    assert (third["ok"], third["code"], third["errno"]) == (False, "ENOSPC", -28), r
    assert 60 < third["mb"] < 200, r
    # The file system is the function's EphemeralStorage, and it is full.
    assert 480 <= r["total_mb"] <= 512, r
    assert r["free_mb"] < 1, r
    assert r["tmp"].startswith(f"{images}/"), r
    assert mounts_under(images), "the TMPDIR is a mount of its own"
    # Another function's environment and the platform are unaffected meanwhile.
    other = unique("eph512-other")
    create_function(lam, other, {"index.mjs": FILLER}, Timeout=30)
    o = ok(lam, other, {"op": "fill", "files": [300]})
    assert o["results"] == [{"ok": True, "mb": 300}] and o["tmp"] != r["tmp"], o
    # The full environment still serves, its files as it left them.
    again = ok(lam, name, {"op": "list"})
    assert (again["pid"], again["entries"]) == (r["pid"], ["file-0", "file-1", "file-2"]), again


def test_1024_mb_holds_900_mb(env):
    _, lam, _ = env
    name = unique("eph1024")
    create_function(lam, name, {"index.mjs": FILLER}, Timeout=30, EphemeralStorage={"Size": 1024})
    r = ok(lam, name, {"op": "fill", "files": [300, 300, 300]})
    assert r["results"] == [{"ok": True, "mb": 300}] * 3, r
    assert 990 <= r["total_mb"] <= 1024, r


def test_a_new_ephemeral_storage_size_takes_effect_on_the_next_invocation(env):
    _, lam, _ = env
    name = unique("ephresize")
    create_function(lam, name, {"index.mjs": FILLER}, Timeout=30, EphemeralStorage={"Size": 512})
    before = ok(lam, name, {"op": "list"})
    assert 480 <= before["total_mb"] <= 512, before
    out = lam.update_function_configuration(FunctionName=name, EphemeralStorage={"Size": 1024})
    assert out["EphemeralStorage"] == {"Size": 1024}, out
    wait_active(lam, name)
    # The warm 512 MB environment is not reused: a new one has the new size.
    after = ok(lam, name, {"op": "list"})
    assert 990 <= after["total_mb"] <= 1024 and after["pid"] != before["pid"], (before, after)


def test_the_next_environment_starts_with_an_empty_tmpdir(env):
    _, lam, _ = env
    name = unique("ephnext")
    create_function(lam, name, {"index.mjs": FILLER}, Timeout=3)
    # Stopped by its timeout with files (a hidden one, a directory) in its TMPDIR.
    err, body = invoke(lam, name, {"op": "hang", "mb": 50})
    assert err == "Unhandled" and body["errorType"] == "Sandbox.Timedout", body
    fresh = ok(lam, name, {"op": "list"})
    assert fresh["entries"] == [], fresh
    assert fresh["free_mb"] > 480, fresh
    # A concurrent environment, while this one holds its files, starts empty too.
    held = {}
    t = threading.Thread(target=lambda: held.update(ok(lam, name, {"op": "hold", "mb": 20, "ms": 1500})))
    t.start()
    time.sleep(0.5)
    second = ok(lam, name, {"op": "list"})
    t.join()
    assert held["entries"] == [".hidden", "mine"], held
    assert second["entries"] == [] and second["tmp"] != held["tmp"], (second, held)


def test_no_mount_or_loop_device_outlives_portico_even_a_killed_one(tmp_path):
    first, images = start(tmp_path, "first")
    # Volumes are named `<pid>-<n>` after the instance that made them.
    theirs = f"{images}/mnt/{first.proc.pid}-"
    try:
        lam = boto_client(first.endpoint, "lambda")
        name = unique("ephkill")
        create_function(lam, name, {"index.mjs": FILLER}, Timeout=10)
        r = ok(lam, name, {"op": "fill", "files": [10]})
        assert r["results"] == [{"ok": True, "mb": 10}] and r["tmp"].startswith(theirs), r
    finally:
        first.kill()  # SIGKILL: its volumes stay mounted, its loop devices bound
    left = [p for p in mounts_under(images) if p.startswith(theirs)]
    assert len(left) >= 2, "a killed Portico leaves its in-use and pooled volumes mounted"
    assert len(loops_under(images)) >= len(left)
    # The next Portico on this sandbox root removes them before it serves.
    second, second_images = start(tmp_path, "second")
    try:
        assert not [p for p in mounts_under(images) if p.startswith(theirs)]
        assert not [line for line in loops_under(images) if f"({images}/img/{first.proc.pid}-" in line]
        lam = boto_client(second.endpoint, "lambda")
        name = unique("ephstop")
        create_function(lam, name, {"index.mjs": FILLER}, Timeout=10)
        assert ok(lam, name, {"op": "list"})["entries"] == []
        stop_and_check(second, signal.SIGTERM)
        for d in {images, second_images}:
            assert not mounts_under(d), mounts_under(d)
            assert not loops_under(d), loops_under(d)
    finally:
        second.kill()
