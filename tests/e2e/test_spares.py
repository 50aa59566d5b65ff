"""Spare runtime processes: started ahead of a function's first invocation (as soon as
the function is created), then assigned to it, so its cold start skips starting the
interpreter and the runtime client.

A spare is told apart by its age: a function returns `process.uptime()` (or Python's
equivalent), and an invocation made a while after the function was created runs in a
process older than the wait only when that process was a spare.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time

import pytest

from conftest import HOST_PYTHON, Server, boto_client, create_function, make_zip, stop_and_check, unique, wait_active

WAIT = 2.0  # between creating a function and invoking it: a spare is older than this

NODE_PROBE = r"""
import fs from 'node:fs';
export const handler = async () => ({
  uptime: process.uptime(), env: { ...process.env }, cwd: process.cwd(), uid: process.getuid(), gid: process.getgid(),
  data: fs.readFileSync('data.txt', 'utf8'), noDeprecation: process.noDeprecation === true,
});
"""

PYTHON_PROBE = r"""
import os, sys
def handler(event, context):
    with open("/proc/self/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return {"uptime": up - ticks / os.sysconf("SC_CLK_TCK"), "env": dict(os.environ), "cwd": os.getcwd(),
            "uid": os.getuid(), "gid": os.getgid(), "data": open("data.txt").read(), "path0": sys.path[0],
            "function_name": context.function_name, "log_stream": context.log_stream_name}
"""

# What a Node.js function's environment holds on Lambda (and a cold start here), besides
# its own variables and the per-invocation _X_AMZN_TRACE_ID.
LAMBDA_VARIABLES = {
    "_HANDLER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR", "TZ", "TMPDIR", "LANG", "PATH", "LD_LIBRARY_PATH",
}


def invoke(lam, name: str):
    r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return body, base64.b64decode(r["LogResult"]).decode()


def created(lam, name: str, files: dict[str, str], **kw) -> None:
    create_function(lam, name, files, **kw)
    time.sleep(WAIT)


def node_probe(server: Server, prefix: str, variables: dict[str, str]):
    """A new Node.js probe function with `variables`, invoked WAIT after its creation:
    (name, its answer, its log tail)."""
    lam = boto_client(server.endpoint, "lambda")
    name = unique(prefix)
    created(lam, name, {"index.mjs": NODE_PROBE, "data.txt": "packaged"}, Environment={"Variables": variables})
    return (name, *invoke(lam, name))


def spare_processes(server: Server, runtime_file: str) -> list[int]:
    """Runtime processes of `server` not (yet) serving a function: they work in `/` until
    their function's task root becomes their working directory."""
    found = []
    for pid, cmd in server.processes():
        try:
            if runtime_file in cmd and os.readlink(f"/proc/{pid}/cwd") == "/":
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_new_function_runs_in_a_spare_with_exactly_its_own_environment(server):
    name, body, log = node_probe(server, "spare-node", {"MY_VAR": "mine"})
    assert body["uptime"] > WAIT * 0.6, f"not a spare: the process is {body['uptime']:.2f} s old"
    env = body["env"]
    assert set(env) - {"_X_AMZN_TRACE_ID"} == LAMBDA_VARIABLES | {"NODE_PATH", "MY_VAR"}, sorted(env)
    assert env["MY_VAR"] == "mine" and env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs22.x"
    assert body["cwd"] == env["LAMBDA_TASK_ROOT"] and env["NODE_PATH"] == env["LAMBDA_TASK_ROOT"] + "/node_modules"
    assert body["data"] == "packaged"
    # Its log reads as any cold start's: the tail has init's REPORT with Init Duration.
    report = next(l for l in log.splitlines() if l.startswith("REPORT "))
    assert "Init Duration: " in report, log
    events = lam_logs(server, name)
    assert events[0].startswith("INIT_START Runtime Version: nodejs:22.v1"), events
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] and any(e.startswith("START RequestId") for e in events), events


def lam_logs(server: Server, name: str) -> list[str]:
    logs = boto_client(server.endpoint, "logs")
    deadline = time.monotonic() + 5
    while True:
        events = [e["message"] for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
        if any(e.startswith("REPORT") for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def test_a_redeployed_function_runs_its_new_code_in_a_spare(server):
    # The inner loop: edit, deploy, invoke. The deploy stops the warm environment; a spare
    # of its kind waits for the next invocation, also of a kind no function had before
    # (a memory size of its own here).
    lam = boto_client(server.endpoint, "lambda")
    name = unique("spare-redeploy")
    created(lam, name, {"index.mjs": NODE_PROBE, "data.txt": "first"})
    assert invoke(lam, name)[0]["data"] == "first"
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"index.mjs": NODE_PROBE, "data.txt": "second"}))
    wait_active(lam, name)
    lam.update_function_configuration(FunctionName=name, MemorySize=136)
    wait_active(lam, name)
    time.sleep(WAIT)
    body, log = invoke(lam, name)
    assert body["data"] == "second", body["data"]
    assert body["uptime"] > WAIT * 0.6, f"not a spare: the process is {body['uptime']:.2f} s old"
    assert "Init Duration: " in log, log


def test_a_function_that_sets_startup_variables_gets_a_process_started_with_them(server):
    _, body, _ = node_probe(server, "spare-opts", {"NODE_OPTIONS": "--no-deprecation"})
    assert body["noDeprecation"], body
    assert body["uptime"] < WAIT * 0.6, f"a spare ({body['uptime']:.2f} s old) cannot honour NODE_OPTIONS"


def test_spares_of_two_functions_are_isolated_from_each_other(server):
    lam = boto_client(server.endpoint, "lambda")
    a, b = unique("spare-a"), unique("spare-b")
    created(lam, a, {"index.mjs": NODE_PROBE, "data.txt": "a's"})
    first, _ = invoke(lam, a)
    created(lam, b, {"index.mjs": NODE_PROBE, "data.txt": "b's"})
    second, _ = invoke(lam, b)
    assert first["uptime"] > WAIT * 0.6 and second["uptime"] > WAIT * 0.6, (first["uptime"], second["uptime"])
    assert first["env"]["LAMBDA_TASK_ROOT"] != second["env"]["LAMBDA_TASK_ROOT"]
    if server.sandbox_dir is not None:  # a user per environment (Portico runs as root)
        assert first["uid"] != second["uid"] and first["gid"] != second["gid"], (first, second)
        # b cannot read a's code: its directory admits a's user only.
        probe = unique("spare-reader")
        create_function(lam, probe, {"index.mjs": READER})
        r = json.loads(lam.invoke(FunctionName=probe, Payload=json.dumps(
            {"path": first["env"]["LAMBDA_TASK_ROOT"] + "/data.txt"}).encode())["Payload"].read())
        assert (r["ok"], r.get("code")) == (False, "EACCES"), r


READER = r"""
import fs from 'node:fs';
export const handler = async (e) => { try { return { ok: true, value: fs.readFileSync(e.path, 'utf8') }; }
  catch (err) { return { ok: false, code: err.code }; } };
"""


def test_spares_are_refilled_and_reported(server):
    lam = boto_client(server.endpoint, "lambda")
    name = unique("spare-refill")
    created(lam, name, {"index.mjs": NODE_PROBE, "data.txt": "x"})
    invoke(lam, name)
    # The profile keeps a spare ready after its cold start took one; the log says what
    # spares there are and their resident memory.
    deadline = time.monotonic() + 15
    while not spare_processes(server, "bootstrap.cjs") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spare_processes(server, "bootstrap.cjs"), server.processes()
    while time.monotonic() < deadline:
        if re.search(r"spare runtimes: .*nodejs22\.x 128 MB ×\d+ \(\d+\.\d MB resident\)", server.log_tail(400)):
            break
        time.sleep(0.2)
    else:
        pytest.fail("no spare runtimes report in the log:\n" + server.log_tail())


def test_python_functions_get_spares_too(python_server):
    lam = boto_client(python_server.endpoint, "lambda")
    name = unique("spare-py")
    created(lam, name, {"app.py": PYTHON_PROBE, "data.txt": "py"}, runtime="python3.12", handler="app.handler",
            Environment={"Variables": {"MY_VAR": "mine"}})
    body, log = invoke(lam, name)
    assert body["uptime"] > WAIT * 0.6, f"not a spare: the process is {body['uptime']:.2f} s old"
    env = body["env"]
    assert "_PORTICO_AWAIT_SANDBOX" not in env and env["MY_VAR"] == "mine", sorted(env)
    assert set(env) - {"_X_AMZN_TRACE_ID"} == (LAMBDA_VARIABLES | {"PYTHONPATH", "MY_VAR"}), sorted(env)
    assert body["cwd"] == env["LAMBDA_TASK_ROOT"] == body["path0"] and body["data"] == "py"
    assert body["function_name"] == name and body["log_stream"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert "Init Duration: " in log


def test_no_spares_when_turned_off(tmp_path):
    server = Server(tmp_path / "data", tmp_path / "portico.log", ("--spare-runtimes", "0")).start()
    try:
        lam = boto_client(server.endpoint, "lambda")
        name = unique("nospare")
        created(lam, name, {"index.mjs": NODE_PROBE, "data.txt": "x"})
        assert not [p for p, cmd in server.processes() if "bootstrap.cjs" in cmd], server.processes()
        body, _ = invoke(lam, name)
        assert body["uptime"] < WAIT * 0.6, body["uptime"]
        stop_and_check(server)
    finally:
        server.kill()
