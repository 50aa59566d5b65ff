"""Runtimes beyond Node.js: a Rust function built with AWS's `lambda_runtime` crate on
`provided.al2023`, Python functions on Portico's Python runtime client, and the errors
Lambda gives for each when the code is wrong.

The host has one Python 3 (CI too), so this module's server runs with
`--python-bin $(which python3)`: `python3.12` functions run on it, an explicit mapping the
server reports at start.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from conftest import (
    HOST_PYTHON, REPO, ROLE, boto_client, curl, error_of, run_aws, unique, wait_active,
)

RUST_FIXTURE = REPO / "tests/fixtures/rust-hello"
def host_python_version() -> str:
    out = subprocess.run([HOST_PYTHON, "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True, env={})
    return out.stdout.strip()


def zip_of(files: dict[str, tuple[bytes | str, int]]) -> bytes:
    """A zip of `{name: (content, unix mode)}`, modes kept as `zip` keeps them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.create_system = 3  # unix: the mode bits below are honoured
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def code_hash(zip_bytes: bytes) -> str:
    """The name of the package's task root (where it lies depends on the sandbox)."""
    return hashlib.sha256(zip_bytes).hexdigest()


def processes_in(zip_bytes: bytes) -> list[int]:
    """Live processes whose working directory is the package's task root."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")).name == code_hash(zip_bytes):
                if "\nState:\tZ" not in (entry / "status").read_text():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def no_processes_in(zip_bytes: bytes, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while processes_in(zip_bytes):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def rt(python_server):
    """This module's own server: Python functions run on the host's python3."""
    return python_server


@pytest.fixture(scope="module")
def lam(rt):
    return boto_client(rt.endpoint, "lambda")


@pytest.fixture(scope="module")
def apigw(rt):
    return boto_client(rt.endpoint, "apigatewayv2")


@pytest.fixture(scope="module")
def rust_bootstrap() -> Path:
    """The Rust fixture, built like any Rust Lambda function (release, binary `bootstrap`)."""
    target = REPO / "target/fixtures"
    p = subprocess.run(
        ["cargo", "build", "--release", "--locked", "--manifest-path", str(RUST_FIXTURE / "Cargo.toml"),
         "--target-dir", str(target)],
        capture_output=True, text=True, timeout=900,
    )
    assert p.returncode == 0, f"building {RUST_FIXTURE} failed:\n{p.stderr[-4000:]}"
    binary = target / "release/bootstrap"
    assert binary.is_file()
    return binary


def create(lam, name: str, runtime: str, handler: str, zip_bytes: bytes, **extra) -> dict:
    out = lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                              Code={"ZipFile": zip_bytes}, **extra)
    wait_active(lam, name)
    return out


def quick_api(lam, apigw, name: str) -> str:
    """`create-api --target` plus the permission the console would add: the API's id."""
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    api = apigw.create_api(Name=unique("rt"), ProtocolType="HTTP", Target=arn)
    region, account = arn.split(":")[3], arn.split(":")[4]
    lam.add_permission(FunctionName=name, StatementId=unique("apigw"), Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{region}:{account}:{api['ApiId']}/*")
    return api["ApiId"]


def invoke(lam, name: str, payload: bytes = b"{}", tail: bool = False):
    r = lam.invoke(FunctionName=name, Payload=payload, LogType="Tail" if tail else "None")
    body = json.loads(r["Payload"].read())
    log = base64.b64decode(r["LogResult"]).decode() if tail else None
    return r, body, log


# --- start-up ------------------------------------------------------------------------------


def test_startup_reports_the_python_and_its_mapping(rt):
    version = host_python_version()
    log = rt.log_path.read_text(errors="replace")
    assert f"--python-bin {HOST_PYTHON}: Python {version}" in log, rt.log_tail()
    minor = int(version.split(".")[1])
    for runtime_minor in (12, 13):
        line = next(l for l in log.splitlines() if f"runtime python3.{runtime_minor}: " in l)
        if runtime_minor == minor:
            assert "mapping" not in line, line
        else:
            assert (f"python3.{runtime_minor} functions run on Python {version} "
                    "(explicit mapping by --python-bin)") in line, line


# --- Rust on provided.al2023 ------------------------------------------------------------------


def test_rust_lambda_runtime_function_behind_an_http_api(rt, tmp_path, rust_bootstrap):
    # As the Rust guide does it: the binary is `bootstrap`, zipped with its mode.
    shutil.copy(rust_bootstrap, tmp_path / "bootstrap")
    subprocess.run(["zip", "-q", "-j", "function.zip", "bootstrap"], cwd=tmp_path, check=True)
    name = unique("rust-hello")
    rc, out, err = run_aws(rt.endpoint, "lambda", "create-function", "--function-name", name,
                           "--runtime", "provided.al2023", "--architectures", "x86_64",
                           "--handler", "rust.handler", "--zip-file", "fileb://function.zip",
                           "--role", ROLE, cwd=tmp_path)
    assert rc == 0, err
    assert out["Runtime"] == "provided.al2023"
    lam = boto_client(rt.endpoint, "lambda")
    wait_active(lam, name)
    api_id = quick_api(lam, boto_client(rt.endpoint, "apigatewayv2"), name)
    r = curl(rt.host_url(api_id, "/hello?name=Dev"))
    assert r.status == 200, (r.status, r.text, rt.log_tail())
    assert r.json() == {"message": "Hello, Dev!"}
    assert r.headers.get("content-type") == "application/json"
    # Warm: the same process answers again.
    r = curl(rt.path_url(api_id, "/hello"))
    assert (r.status, r.json()) == (200, {"message": "Hello, world!"})


def test_missing_bootstrap_is_an_invalid_entrypoint(rt, lam):
    zip_bytes = zip_of({"README.md": ("no bootstrap here", 0o644)})
    name = unique("no-bootstrap")
    create(lam, name, "provided.al2023", "hello.handler", zip_bytes)
    r, body, log = invoke(lam, name, tail=True)
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["RequestId"]
    assert body["errorType"] == "Runtime.InvalidEntrypoint", body
    # Lambda names the paths it looked at; here the task root is the one path.
    m = re.fullmatch(rf"RequestId: {rid} Error: Couldn't find valid bootstrap\(s\): \[(/.+)/bootstrap\]",
                     body["errorMessage"])
    assert m and Path(m.group(1)).name == code_hash(zip_bytes), body
    assert f"{body['errorMessage']}\nRuntime.InvalidEntrypoint\n" in log, log
    # Every invocation gets the same answer, as every init attempt on Lambda would.
    r2, body2, _ = invoke(lam, name)
    assert body2["errorType"] == "Runtime.InvalidEntrypoint", body2
    assert body2["errorMessage"].startswith(f"RequestId: {r2['ResponseMetadata']['RequestId']} Error: "), body2


def test_non_executable_bootstrap_is_an_invalid_entrypoint(rt, lam):
    zip_bytes = zip_of({"bootstrap": ("#!/bin/sh\necho never\n", 0o644)})
    name = unique("noexec-bootstrap")
    create(lam, name, "provided.al2", "hello.handler", zip_bytes)
    r, body, _ = invoke(lam, name)
    assert r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["RequestId"]
    assert body["errorType"] == "Runtime.InvalidEntrypoint", body
    m = re.fullmatch(rf"RequestId: {rid} Error: fork/exec (/.+)/bootstrap: permission denied", body["errorMessage"])
    assert m and Path(m.group(1)).name == code_hash(zip_bytes), body


SCRIPT_BOOTSTRAP = '''#!/usr/bin/env python3
# A custom runtime in a script: answers each event with the environment it runs in.
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
    keys = ["AWS_EXECUTION_ENV", "_HANDLER", "LAMBDA_TASK_ROOT", "PATH", "LD_LIBRARY_PATH", "NODE_PATH",
            "PYTHONPATH", "AWS_LAMBDA_FUNCTION_NAME", "MY_SETTING"]
    body = json.dumps({k: os.environ.get(k) for k in keys} | {"cwd": os.getcwd()}).encode()
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=body, method="POST"))
'''


def test_script_bootstrap_on_provided_al2_and_its_environment(rt, lam):
    zip_bytes = zip_of({"bootstrap": (SCRIPT_BOOTSTRAP, 0o755)})
    name = unique("script-runtime")
    create(lam, name, "provided.al2", "function.handler", zip_bytes,
           Environment={"Variables": {"MY_SETTING": "on", "LD_LIBRARY_PATH": "/custom/lib"}})
    r, env, _ = invoke(lam, name)
    assert "FunctionError" not in r, env
    root = env["LAMBDA_TASK_ROOT"]
    assert env["cwd"] == root and Path(root).name == code_hash(zip_bytes)
    assert env["_HANDLER"] == "function.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name and env["MY_SETTING"] == "on"
    # AWS leaves AWS_EXECUTION_ENV undefined for OS-only runtimes, and sets no
    # language paths; LD_LIBRARY_PATH is not reserved: the function's value wins.
    assert env["AWS_EXECUTION_ENV"] is None and env["NODE_PATH"] is None and env["PYTHONPATH"] is None
    assert env["LD_LIBRARY_PATH"] == "/custom/lib"
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"


# --- Python ------------------------------------------------------------------------------------

HELLO_PY = '''import json, os, platform

def handler(event, context):
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "x-python": platform.python_version(),
                    "x-execution-env": os.environ["AWS_EXECUTION_ENV"]},
        "body": json.dumps({"message": f"Hello, {name}!"}),
    }
'''


def test_python312_function_behind_an_http_api(rt, lam, apigw):
    name = unique("py-hello")
    out = create(lam, name, "python3.12", "lambda_function.handler", zip_of({"lambda_function.py": (HELLO_PY, 0o644)}))
    assert out["Runtime"] == "python3.12"
    api_id = quick_api(lam, apigw, name)
    r = curl(rt.host_url(api_id, "/hello?name=Dev"))
    assert r.status == 200, (r.status, r.text, rt.log_tail())
    assert r.json() == {"message": "Hello, Dev!"}
    assert r.headers["content-type"] == "application/json"
    # Runs on the configured Python (its 3.x line), and says it is python3.12 as on Lambda.
    assert r.headers["x-python"].split(".")[:2] == host_python_version().split(".")[:2]
    assert r.headers["x-execution-env"] == "AWS_Lambda_python3.12"


def test_python_environment(rt, lam):
    src = ("import os, sys\n"
           "def handler(event, context):\n"
           "    keys = ['PYTHONPATH', 'LAMBDA_RUNTIME_DIR', 'LAMBDA_TASK_ROOT', 'NODE_PATH', 'LD_LIBRARY_PATH', 'PATH']\n"
           "    return {k: os.environ.get(k) for k in keys} | {'path0': sys.path[0]}\n")
    zip_bytes = zip_of({"env_fn.py": (src, 0o644)})
    name = unique("py-env")
    create(lam, name, "python3.12", "env_fn.handler", zip_bytes)
    _, env, _ = invoke(lam, name)
    root = env["LAMBDA_TASK_ROOT"]
    # The function's own modules come first (the task root's name is Portico's: the
    # package's hash, or a spare's `task`, as Lambda's /var/task).
    assert env["path0"] == root and Path(root).name in (code_hash(zip_bytes), "task")
    # PYTHONPATH is the runtime's directory, as on Lambda (/var/runtime there).
    assert env["PYTHONPATH"] == env["LAMBDA_RUNTIME_DIR"] and env["PYTHONPATH"].endswith("/runtimes/python")
    assert env["NODE_PATH"] is None
    assert env["LD_LIBRARY_PATH"].split(":")[-2:] == [root, f"{root}/lib"]
    # The interpreter's directory first, as /var/lang/bin on Lambda.
    assert env["PATH"].endswith(":/usr/local/bin:/usr/bin:/bin") and env["PATH"].count(":") == 3, env


def test_python_exception_is_unhandled_function_error(rt, lam):
    src = "def handler(event, context):\n    raise ValueError('bad thing happened')\n"
    name = unique("py-raise")
    create(lam, name, "python3.12", "app.handler", zip_of({"app.py": (src, 0o644)}))
    r, err, log = invoke(lam, name, tail=True)
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["RequestId"]
    assert err["errorType"] == "ValueError" and err["errorMessage"] == "bad thing happened", err
    assert err["requestId"] == rid
    assert isinstance(err["stackTrace"], list) and len(err["stackTrace"]) == 1, err
    assert re.fullmatch(r'  File ".*/app\.py", line 2, in handler\n    raise ValueError\(.bad thing happened.\)\n',
                        err["stackTrace"][0]), err
    assert "[ERROR] ValueError: bad thing happened\rTraceback (most recent call last):" in log, log
    # The environment survives a function error.
    r, err, _ = invoke(lam, name)
    assert err["errorType"] == "ValueError"


@pytest.mark.parametrize("files, handler, error_type, message", [
    ({"app.py": "def handler(e, c):\n    return 1\n"}, "nothere.handler",
     "Runtime.ImportModuleError", "Unable to import module 'nothere': No module named 'nothere'"),
    ({"app.py": "def other(e, c):\n    return 1\n"}, "app.handler",
     "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'"),
    ({"app.py": "def handler(:\n    return 1\n"}, "app.handler", "Runtime.UserCodeSyntaxError", None),
    ({"app.py": ""}, "appnodot", "Runtime.MalformedHandlerName",
     "Bad handler 'appnodot': not enough values to unpack (expected 2, got 1)"),
], ids=["import", "handler-missing", "syntax", "malformed"])
def test_python_init_errors(rt, lam, files, handler, error_type, message):
    zip_bytes = zip_of({k: (v, 0o644) for k, v in files.items()})
    name = unique("py-init")
    create(lam, name, "python3.13", handler, zip_bytes)
    for _ in range(2):  # each invocation tries init again, as on Lambda
        r, err, log = invoke(lam, name, tail=True)
        assert r["FunctionError"] == "Unhandled", err
        assert err["errorType"] == error_type, err
        if message is not None:
            assert err == {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}
        else:
            assert err["errorMessage"].startswith("Syntax error in module 'app': "), err
        assert f"[ERROR] {error_type}: " in log, log
    assert no_processes_in(zip_bytes)


def test_python_logging_in_the_log_tail(rt, lam):
    src = ("import logging\n"
           "logger = logging.getLogger()\n"
           "logger.setLevel(logging.INFO)\n"
           "def handler(event, context):\n"
           "    print('plain print output')\n"
           "    logger.info('processing %s', event['id'])\n"
           "    logger.warning('two\\nlines')\n"
           "    return {'ok': True}\n")
    name = unique("py-logs")
    create(lam, name, "python3.12", "logs_fn.handler", zip_of({"logs_fn.py": (src, 0o644)}))
    r, body, log = invoke(lam, name, b'{"id": "abc"}', tail=True)
    assert body == {"ok": True}
    rid = re.escape(r["ResponseMetadata"]["RequestId"])
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.search(rf"^START RequestId: {rid} Version: \$LATEST$", log, re.M), log
    assert "\nplain print output\n" in log, log
    assert re.search(rf"^\[INFO\]\t{iso}\t{rid}\tprocessing abc$", log, re.M), log
    assert re.search(rf"^\[WARNING\]\t{iso}\t{rid}\ttwo\rlines$", log, re.M), log
    assert re.search(rf"^END RequestId: {rid}$", log, re.M), log
    assert re.search(rf"^REPORT RequestId: {rid}\tDuration: [\d.]+ ms\t", log, re.M), log


def test_unknown_runtime_lists_the_valid_values(lam):
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.create_function(FunctionName=unique("py39"), Runtime="python3.9", Role=ROLE, Handler="a.b",
                            Code={"ZipFile": zip_of({"a.py": ("", 0o644)})})
    assert error_of(e) == ("InvalidParameterValueException", 400)
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith("Value python3.9 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: ["), msg
    assert ("python3.14, python3.13, python3.12, python3.11, python3.10, provided.al2023, provided.al2]"
            in msg), msg
