"""`portico serve` as a user starts it: settings from PORTICO_* variables, the XDG data dir
by default, and a runtime whose interpreter is missing named as such, with what to install.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (PORTICO_BIN, ROLE, Server, boto_client, make_zip, read_credentials,
                      stop_and_check, unique, wait_no_processes)


def start_raw(env: dict[str, str], log: Path, timeout: float = 30.0) -> tuple[subprocess.Popen, list[str]]:
    """`portico serve` with no flags at all: everything comes from `env`."""
    proc = subprocess.Popen([str(PORTICO_BIN), "serve"], stdout=subprocess.PIPE, stderr=open(log, "ab"),
                            stdin=subprocess.DEVNULL, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def pump():
        for raw in proc.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            if lines[-1].startswith("Portico listening on"):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not any(l.startswith("Portico listening on") for l in lines):
        proc.kill()
        raise AssertionError(f"no listening line: {lines!r}\n{log.read_text(errors='replace')[-3000:]}")
    return proc, lines


def wait_state(lam, name: str, state: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg["State"] == state:
            return cfg
        assert time.monotonic() < deadline, f"{name} is {cfg['State']}, not {state}: {cfg}"
        time.sleep(0.05)


def test_serve_takes_its_settings_from_portico_variables_and_the_xdg_data_dir(tmp_path):
    xdg = tmp_path / "xdg"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_") and k != "HOME"}
    env.update({
        "XDG_DATA_HOME": str(xdg),
        "PORTICO_LISTEN": "127.0.0.1:0",
        "PORTICO_ACCOUNT_ID": "444455556666",
        "PORTICO_REGION": "eu-west-1",
        "PORTICO_LOG": "info",
    })
    # Node.js 22 deliberately not given: the system directories only (.tools is not among
    # them), where Portico looks for `node22` and `node`.
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for d in env["PATH"].split(":"):
        for name in ("node22", "node"):
            found = Path(d, name)
            if found.exists() and subprocess.run([found, "--version"], capture_output=True,
                                                 text=True).stdout.startswith("v22."):
                pytest.skip(f"{found} is Node.js 22: this host cannot show a missing one")
    log = tmp_path / "serve.log"
    proc, lines = start_raw(env, log)
    data_dir = xdg / "portico"
    try:
        ready = next(l for l in lines if l.startswith("Portico listening on"))
        assert ready.endswith(f"(data dir {data_dir})"), ready
        endpoint = ready.split()[3]
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        creds = data_dir / "credentials"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        keys = read_credentials(creds)
        sts = boto_client(endpoint, "sts", credentials=keys)
        assert sts.get_caller_identity()["Account"] == "444455556666"
        # PORTICO_REGION is the default region, the one the start-up output tells clients to use
        # (a signed request's own scope names its region).
        assert any(l.startswith("Use it: ") and "AWS_DEFAULT_REGION=eu-west-1 " in l for l in lines), lines
        lam = boto_client(endpoint, "lambda", credentials=keys, region="eu-west-1")
        name = unique("no-node22")
        out = lam.create_function(FunctionName=name, Runtime="nodejs22.x", Role=ROLE.replace("111122223333", "444455556666"),
                                  Handler="index.handler", Code={"ZipFile": make_zip({"index.mjs": "export const handler = async () => 1;"})})
        assert out["FunctionArn"] == f"arn:aws:lambda:eu-west-1:444455556666:function:{name}"
        # A runtime whose interpreter is missing: the function fails to activate with the
        # reason, naming what to install; the start-up log said so first.
        cfg = wait_state(lam, name, "Failed")
        assert "Node.js 22" in cfg["StateReason"] and "npm install" in cfg["StateReason"], cfg
        text = log.read_text(errors="replace")
        assert "nodejs22.x: unavailable (runtime nodejs22.x needs Node.js 22" in text, text[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not wait_no_processes(str(data_dir))


def node20() -> str | None:
    for candidate in ("node20", "node"):
        path = shutil.which(candidate)
        if path:
            version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            if version.startswith("v20."):
                return path
    return None


@pytest.mark.skipif(node20() is None, reason="needs a Node.js 20 on PATH")
def test_a_nodejs22_bin_of_another_version_is_refused_with_what_it_is(tmp_path):
    wrong = node20()
    server = Server(tmp_path / "data", tmp_path / "serve.log", extra_args=("--nodejs22-bin", wrong)).start()
    try:
        text = server.log_path.read_text(errors="replace")
        assert f"nodejs22.x: unavailable (--nodejs22-bin points at {wrong} which is Node.js 20, not Node.js 22)" in text
        lam = boto_client(server.endpoint, "lambda")
        name = unique("wrong-node")
        lam.create_function(FunctionName=name, Runtime="nodejs22.x", Role=ROLE, Handler="index.handler",
                            Code={"ZipFile": make_zip({"index.mjs": "export const handler = async () => 1;"})})
        cfg = wait_state(lam, name, "Failed")
        assert "Node.js 20, not Node.js 22" in cfg["StateReason"], cfg
    finally:
        stop_and_check(server)
