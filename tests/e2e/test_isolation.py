"""The sandbox of execution environments: what a function may read, write, signal and
reach; its memory limit; faults (exit, out of memory, a hanging init) and leaks.

Each test runs against three servers: `host` uses everything this host allows (as root:
a user per environment, Landlock where the kernel has it, cgroups where writable);
`degraded` runs as a non-root Portico would without a delegated cgroup (`--isolation off
--cgroups off`: functions share Portico's user, memory is held by the watchdog); `bare`
also turns Landlock off, as on a kernel without it. What each mode must guarantee
follows from plain probes (euid, the Landlock ABI) in `Mode`; where it guarantees less,
the test asserts the documented gap instead of skipping.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import os
import re
import signal
import time
import uuid
from pathlib import Path

import pytest

from conftest import Server, assert_in_own_cgroups, boto_client, create_function, make_zip, stop_and_check, unique

IS_ROOT = os.geteuid() == 0


def _landlock_abi() -> int:
    """The kernel's Landlock ABI (0: none), as Portico probes it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION), x86_64 number 444.
    return max(0, libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1)))


LANDLOCK_ABI = _landlock_abi()

# One probe function does whatever the event asks; two functions run it with different
# packages (the victim's carries a secret), so their code trees differ.
PROBE = r"""
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import { spawn } from 'node:child_process';

const attempt = (f) => { try { return { ok: true, value: f() }; } catch (e) { return { ok: false, code: e.code, message: e.message }; } };
const held = [];

export const handler = async (event) => {
  switch (event.op) {
    case 'info':
      return { uid: process.getuid(), gid: process.getgid(), pid: process.pid, cwd: process.cwd(),
               root: process.env.LAMBDA_TASK_ROOT, tmp: os.tmpdir(), api: process.env.AWS_LAMBDA_RUNTIME_API,
               limits: fs.readFileSync('/proc/self/limits', 'utf8'),
               // The scheduling policy: field 41 of stat, counted after the command's ')'.
               policy: Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[38]) };
    case 'read':
      return attempt(() => fs.readFileSync(event.path, 'utf8').slice(0, 64));
    case 'list':
      return attempt(() => fs.readdirSync(event.path));
    case 'write':
      return attempt(() => { fs.writeFileSync(event.path, event.data ?? 'x', { flag: event.flag ?? 'w' }); return 'written'; });
    case 'big':
      // One byte just past the limit: RLIMIT_FSIZE refuses it without writing the rest.
      return attempt(() => { const fd = fs.openSync(event.path, 'w'); try { return fs.writeSync(fd, Buffer.from('x'), 0, 1, event.offset); } finally { fs.closeSync(fd); } });
    case 'signal':
      return attempt(() => process.kill(event.pid, 0));
    case 'get':
      return await new Promise((resolve) => {
        const req = http.get(event.url, { timeout: 2000 }, (res) => { res.resume(); resolve({ ok: true, status: res.statusCode }); });
        req.on('error', (e) => resolve({ ok: false, code: e.code, message: e.message }));
        req.on('timeout', () => { req.destroy(); resolve({ ok: false, code: 'TIMEOUT' }); });
      });
    case 'spawn': {
      const child = spawn('sleep', [event.seconds], { detached: true, stdio: 'ignore' });
      child.unref();
      if (event.hang) await new Promise(() => setInterval(() => {}, 1000));
      return { pid: child.pid };
    }
    case 'alloc':
      for (;;) { held.push(Buffer.alloc(8 * 1024 * 1024, 1)); await new Promise((r) => setImmediate(r)); }
    case 'exit':
      process.exit(event.code);
  }
  return { unknown: event.op };
};
"""

MODES = {
    "host": [],
    "degraded": ["--isolation", "off", "--cgroups", "off"],
    # What a host without Landlock (Linux < 5.13) gets: file modes only.
    "bare": ["--isolation", "off", "--cgroups", "off", "--landlock", "off"],
}


class Mode:
    def __init__(self, name: str, server: Server):
        self.name = name
        self.server = server
        self.lam = boto_client(server.endpoint, "lambda")
        log = server.log_path.read_text(errors="replace")
        self.summary = next(l for l in log.splitlines() if "sandbox: users:" in l)
        m = re.search(r"users: uids (\d+)-(\d+)", self.summary)
        self.uids = range(int(m.group(1)), int(m.group(2)) + 1) if m else None
        self.cgroups = "cgroups: off" not in self.summary
        self.probe = unique("probe")
        self.victim = unique("victim")
        create_function(self.lam, self.probe, {"index.mjs": PROBE}, Timeout=10)
        create_function(self.lam, self.victim, {"index.mjs": PROBE, "secret.txt": "victim's secret"}, Timeout=10)

    # What the host lets this mode guarantee.
    @property
    def users(self) -> bool:
        return self.name == "host" and IS_ROOT

    @property
    def landlock(self) -> bool:
        return LANDLOCK_ABI > 0 and "--landlock" not in MODES[self.name]

    def invoke(self, name: str, event: dict, tail: bool = False):
        t0 = time.monotonic()
        kw = {"LogType": "Tail"} if tail else {}
        r = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
        body = json.loads(r["Payload"].read() or b"null")
        log = base64.b64decode(r["LogResult"]).decode() if tail else ""
        return r.get("FunctionError"), body, time.monotonic() - t0, r["ResponseMetadata"]["RequestId"], log

    def ok(self, name: str, event: dict):
        err, body, *_ = self.invoke(name, event)
        assert err is None, (name, event, body)
        return body


@pytest.fixture(scope="module", params=list(MODES))
def mode(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"sandbox-{request.param}")
    server = Server(base / "data", base / "portico.log", ("--init-timeout", "1", *MODES[request.param])).start()
    try:
        yield Mode(request.param, server)
        stop_and_check(server)
    finally:
        server.kill()


def processes(pred) -> list[tuple[int, int, str]]:
    """Live (non-zombie) processes (pid, uid, cmdline) matching `pred(uid, cmdline, cwd)`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if "\nState:\tZ" in status:
            continue
        uid = int(re.search(r"\nUid:\t(\d+)", status).group(1))
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        if pred(uid, cmd, cwd):
            out.append((int(entry.name), uid, cmd))
    return out


def wait_gone(pred, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while (left := processes(pred)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# --- startup ----------------------------------------------------------------------------------


def test_startup_states_the_sandbox_and_its_gaps(mode):
    log = mode.server.log_path.read_text(errors="replace")
    if mode.users:
        assert mode.uids is not None, mode.summary
    else:
        assert "users: shared" in mode.summary, mode.summary
        assert "not isolated: users:" in log
    assert (f"landlock: ABI {LANDLOCK_ABI}" in mode.summary) == mode.landlock, mode.summary
    if mode.name == "degraded":
        assert "not isolated: cgroups: disabled" in log


def test_function_runs_as_its_own_user_with_lambda_limits(mode):
    info = mode.ok(mode.probe, {"op": "info"})
    limits = info["limits"]
    assert re.search(r"Max open files\s+1024\s+1024", limits), limits
    assert re.search(r"Max core file size\s+0\s+0", limits), limits
    assert re.search(rf"Max file size\s+{512 * 1024 * 1024}\s+{512 * 1024 * 1024}", limits), limits
    # SCHED_BATCH (3): a runtime woken by its event does not preempt Portico.
    assert info["policy"] == 3, info
    if mode.users:
        assert info["uid"] in mode.uids and info["uid"] != 0, info
        other = mode.ok(mode.victim, {"op": "info"})
        assert other["uid"] != info["uid"] and other["gid"] != info["gid"], (info, other)
        assert re.search(r"Max processes\s+1024\s+1024", limits), limits
    else:
        assert info["uid"] == os.geteuid(), info


# --- files ------------------------------------------------------------------------------------


def test_data_dir_is_out_of_reach(mode):
    db = mode.server.data_dir / "state" / "portico.db"
    assert db.is_file()
    r = mode.ok(mode.probe, {"op": "read", "path": str(db)})
    listing = mode.ok(mode.probe, {"op": "list", "path": str(mode.server.data_dir)})
    if mode.users or mode.landlock:
        assert (r["ok"], r.get("code")) == (False, "EACCES"), r
        assert (listing["ok"], listing.get("code")) == (False, "EACCES"), listing
    else:
        # Documented gap: without root and Landlock, the function is Portico's user.
        assert r["ok"], r


def test_another_functions_code_is_out_of_reach(mode):
    victim = mode.ok(mode.victim, {"op": "info"})
    assert mode.ok(mode.victim, {"op": "read", "path": victim["root"] + "/secret.txt"})["value"] == "victim's secret"
    theirs = mode.ok(mode.probe, {"op": "read", "path": victim["root"] + "/secret.txt"})
    # The shared, content-addressed tree in the data dir is no way around it.
    sha = base64.b64decode(mode.lam.get_function(FunctionName=mode.victim)["Configuration"]["CodeSha256"]).hex()
    canonical = mode.ok(mode.probe, {"op": "read", "path": str(mode.server.data_dir / "code" / sha / "secret.txt")})
    if mode.users or mode.landlock:
        assert (theirs["ok"], theirs.get("code")) == (False, "EACCES"), theirs
        assert (canonical["ok"], canonical.get("code")) == (False, "EACCES"), canonical
    else:
        assert theirs["ok"], theirs


def test_code_is_read_only_and_tmp_is_private_and_writable(mode):
    mine = mode.ok(mode.probe, {"op": "info"})
    # Appending nothing: opening for write is the test, the code stays intact either way.
    for path in (mine["root"] + "/index.mjs", mine["root"] + f"/new-{uuid.uuid4().hex}.js"):
        r = mode.ok(mode.probe, {"op": "write", "path": path, "data": "", "flag": "a"})
        if mode.users or mode.landlock or not IS_ROOT:
            assert (r["ok"], r.get("code")) in ((False, "EACCES"), (False, "EROFS")), (path, r)
        else:
            # Documented gap: a function running as root without Landlock ignores file modes.
            assert r["ok"], (path, r)
    scratch = mine["tmp"] + "/scratch.txt"
    assert mode.ok(mode.probe, {"op": "write", "path": scratch, "data": "hello"})["ok"]
    assert mode.ok(mode.probe, {"op": "read", "path": scratch})["value"] == "hello"
    # Another environment's TMPDIR.
    victim = mode.ok(mode.victim, {"op": "info"})
    assert mode.ok(mode.victim, {"op": "write", "path": victim["tmp"] + "/secret", "data": "s"})["ok"]
    r = mode.ok(mode.probe, {"op": "read", "path": victim["tmp"] + "/secret"})
    if mode.users or mode.landlock:
        assert (r["ok"], r.get("code")) == (False, "EACCES"), r
    else:
        assert r["ok"], r
    # Writes outside TMPDIR, e.g. the host's /tmp, are Landlock's to refuse.
    escape = Path(f"/tmp/portico-escape-{uuid.uuid4().hex}")
    r = mode.ok(mode.probe, {"op": "write", "path": str(escape)})
    assert r["ok"] is not mode.landlock, r
    escape.unlink(missing_ok=True)


def test_files_are_capped_at_the_ephemeral_storage_size(mode):
    tmp = mode.ok(mode.probe, {"op": "info"})["tmp"]
    limit = 512 * 1024 * 1024
    r = mode.ok(mode.probe, {"op": "big", "path": tmp + "/big", "offset": limit})
    assert (r["ok"], r.get("code")) == (False, "EFBIG"), r
    assert mode.ok(mode.probe, {"op": "big", "path": tmp + "/big", "offset": limit - 1})["value"] == 1


# --- processes and the Runtime API ------------------------------------------------------------


def test_other_processes_cannot_be_signalled(mode):
    victim = mode.ok(mode.victim, {"op": "info"})
    for pid in (victim["pid"], mode.server.proc.pid):
        r = mode.ok(mode.probe, {"op": "signal", "pid": pid})
        if mode.users or (mode.landlock and LANDLOCK_ABI >= 6):
            assert (r["ok"], r.get("code")) == (False, "EPERM"), (pid, r)
        else:
            assert r["ok"], (pid, r)


def test_runtime_api_serves_only_its_own_environment(mode):
    victim = mode.ok(mode.victim, {"op": "info"})
    # A harmless path: an accepted connection answers 404, a refused one is closed.
    r = mode.ok(mode.probe, {"op": "get", "url": f"http://{victim['api']}/2018-06-01/runtime/nope"})
    if mode.users:
        assert not r["ok"] and r["code"] in ("ECONNRESET", "EPIPE", "ECONNREFUSED"), r
    else:
        # Documented gap: with one shared user the listener cannot tell environments apart.
        assert (r["ok"], r.get("status")) == (True, 404), r
    # The victim still serves.
    assert mode.ok(mode.victim, {"op": "info"})["api"] == victim["api"]


# --- faults -----------------------------------------------------------------------------------


# Module scope runs at init: what it sees is where function code first runs.
CGROUP_AT_INIT_NODE = """
import fs from 'node:fs';
const atInit = fs.readFileSync('/proc/self/cgroup', 'utf8');
const awaitVar = process.env._PORTICO_AWAIT_SANDBOX ?? null;
export const handler = async () => ({ atInit, awaitVar });
"""
def test_function_code_runs_in_its_cgroups_from_its_first_line(mode):
    """Portico's own runtime clients start before their cgroups are joined (the join waits
    out an RCU grace period) and load function code only once it is done (Python: in
    test_init_logs.py, whose server has a Python the sandbox users can run)."""
    if not mode.cgroups:
        pytest.skip("no cgroups in this mode")
    name = unique("cg-init")
    create_function(mode.lam, name, {"index.mjs": CGROUP_AT_INIT_NODE})
    assert_in_own_cgroups(mode.ok(name, {}))


def test_out_of_memory_ends_the_environment_with_lambdas_error(mode):
    name = unique("oom")
    create_function(mode.lam, name, {"index.mjs": PROBE}, MemorySize=128, Timeout=20)
    err, body, took, rid, log = mode.invoke(name, {"op": "alloc"}, tail=True)
    assert err == "Unhandled", body
    assert body == {"errorType": "Runtime.OutOfMemory",
                    "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed"}, body
    used = int(re.search(r"Max Memory Used: (\d+) MB", log).group(1))
    assert used >= 100, log
    # The next request gets a fresh environment.
    assert mode.ok(name, {"op": "info"})["pid"]


def test_exit_is_runtime_exit_error_and_the_next_request_works(mode):
    name = unique("exit")
    create_function(mode.lam, name, {"index.mjs": PROBE})
    err, body, _, rid, _ = mode.invoke(name, {"op": "exit", "code": 1})
    assert err == "Unhandled"
    assert body == {"errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 1"}, body
    assert mode.ok(name, {"op": "info"})["pid"]


def test_a_timeout_leaves_no_process_behind(mode):
    name = unique("leak")
    create_function(mode.lam, name, {"index.mjs": PROBE}, Timeout=2)
    marker = f"1000.{uuid.uuid4().int % 10**6:06d}"
    err, body, *_ = mode.invoke(name, {"op": "spawn", "seconds": marker, "hang": True})
    assert err == "Unhandled" and body["errorType"] == "Sandbox.Timedout", body
    left = wait_gone(lambda uid, cmd, cwd: cmd == f"sleep {marker}")
    assert not left, f"detached child survived its environment: {left}"


def test_server_stop_leaves_no_process_behind(mode, tmp_path):
    server = Server(tmp_path / "data", tmp_path / "portico.log", MODES[mode.name]).start()
    try:
        lam = boto_client(server.endpoint, "lambda")
        name = unique("stop")
        create_function(lam, name, {"index.mjs": PROBE})
        marker = f"1000.{uuid.uuid4().int % 10**6:06d}"
        r = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps(
            {"op": "spawn", "seconds": marker}).encode())["Payload"].read())
        assert r["pid"]
        assert processes(lambda uid, cmd, cwd: cmd == f"sleep {marker}"), "the detached child runs while the environment is warm"
        summary = next(l for l in server.log_path.read_text().splitlines() if "sandbox: users:" in l)
        stop_and_check(server)
        assert not wait_gone(lambda uid, cmd, cwd: cmd == f"sleep {marker}")
        if m := re.search(r"users: uids (\d+)-(\d+)", summary):
            lo, hi = int(m.group(1)), int(m.group(2))
            assert not wait_gone(lambda uid, cmd, cwd: lo <= uid <= hi), "processes of the instance's uids survived it"
    finally:
        server.kill()


def test_init_past_the_limit_is_retried_within_the_invocation(mode):
    # Init sleeps 2.5 s, over the 1 s limit: killed at 1 s, then retried under the function's timeout.
    name = unique("slowinit")
    src = "await new Promise((r) => setTimeout(r, 2500));\n" + PROBE
    create_function(mode.lam, name, {"index.mjs": src}, Timeout=10)
    err, body, took, *_ = mode.invoke(name, {"op": "info"})
    assert err is None, body
    assert 3.4 < took < 8, took
    log = mode.server.log_path.read_text(errors="replace")
    assert f"{name}: init exceeded 1.0 s; retrying it within the invocation" in log
    # Warm afterwards.
    _, _, took, *_ = mode.invoke(name, {"op": "info"})
    assert took < 1, took


def test_a_hanging_init_times_out_and_blocks_nothing(mode):
    name = unique("hanginit")
    src = "await new Promise(() => setInterval(() => {}, 1000));\n" + PROBE
    create_function(mode.lam, name, {"index.mjs": src}, Timeout=2)
    # Its processes run in its task root, named by the package's SHA-256.
    sha = hashlib.sha256(make_zip({"index.mjs": src})).hexdigest()
    for _ in range(2):
        err, body, took, rid, _ = mode.invoke(name, {"op": "info"})
        assert err == "Unhandled", body
        assert body == {"errorType": "Sandbox.Timedout",
                        "errorMessage": f"RequestId: {rid} Error: Task timed out after 2.00 seconds"}, body
        # 1 s of init, then the retried init within the 2 s timeout.
        assert 2.9 < took < 6, took
        # Every process of the killed inits is gone.
        assert not wait_gone(lambda uid, cmd, cwd: sha in cwd), sha
    # Other functions are served meanwhile.
    assert mode.ok(mode.probe, {"op": "info"})["pid"]


def test_a_killed_portico_is_cleaned_up_by_the_next_one(mode, tmp_path):
    marker = f"1000.{uuid.uuid4().int % 10**6:06d}"
    is_leftover = lambda uid, cmd, cwd: cmd == f"sleep {marker}"  # noqa: E731
    first = Server(tmp_path / "data", tmp_path / "first.log", MODES[mode.name]).start()
    try:
        lam = boto_client(first.endpoint, "lambda")
        name = unique("killed")
        create_function(lam, name, {"index.mjs": PROBE})
        lam.invoke(FunctionName=name, Payload=json.dumps({"op": "spawn", "seconds": marker}).encode())
        assert processes(is_leftover)
    finally:
        first.kill()  # SIGKILL: Portico gets no chance to clean up
    second = Server(tmp_path / "data", tmp_path / "second.log", MODES[mode.name]).start()
    try:
        left = wait_gone(is_leftover)
        if mode.users or mode.cgroups:
            # The uid block (or the dead instance's cgroup) is reclaimed, with what ran in it.
            assert not left, left
        else:
            # Documented gap: with neither a uid of its own nor a cgroup, a process that
            # left the runtime's group outlives a Portico that was SIGKILLed.
            assert left, "expected the documented leak"
            for pid, _, _ in left:
                os.kill(pid, signal.SIGKILL)
        stop_and_check(second)
    finally:
        second.kill()
