"""End-to-end fixtures: a live `portico serve`, the real AWS CLI (v1), boto3 and curl.

Everything talks to Portico over its one public port. The clients are isolated from
any user configuration: private (empty) AWS config files, a private HOME for the CLI,
and AWS_EC2_METADATA_DISABLED=true so botocore never probes the instance-metadata
address. Every call is signed with a real key of the server it goes to: each Server
reads the administrator key its data dir's first start wrote to `<data-dir>/credentials`
and registers it under its endpoint; `run_aws`, `boto_client` and `signed_curl` sign
with the key registered for the endpoint they call (or with `credentials=` given).

Environment:
  PORTICO_BIN            the binary under test (default: target/debug/portico)
  PORTICO_NODEJS22_BIN   a Node.js 22 binary (default: .tools/node22/node_modules/node/bin/node)
"""

from __future__ import annotations

import atexit
import base64
import configparser
import contextlib
import datetime
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-exec"
# A well-formed key that no server knows (AWS's documentation example): for refusals.
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# --- client isolation, set before any botocore session is created -------------------

_CLIENT_HOME = Path(tempfile.mkdtemp(prefix="portico-e2e-home-"))
atexit.register(shutil.rmtree, _CLIENT_HOME, True)
(_CLIENT_HOME / "aws-config").write_text("")
(_CLIENT_HOME / "aws-credentials").write_text("")
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
             "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
    os.environ.pop(_var, None)
for _var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.pop(_var, None)
# What every AWS client in the suite sees: private config files, no instance-metadata
# probing, no proxy for loopback. No credentials: each call is given its server's key.
CLIENT_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": str(_CLIENT_HOME / "aws-config"),
    "AWS_SHARED_CREDENTIALS_FILE": str(_CLIENT_HOME / "aws-credentials"),
    "AWS_PAGER": "",
    "NO_PROXY": "*",
    "no_proxy": "*",
}
os.environ.update(CLIENT_ENV)

import boto3  # noqa: E402  (after the environment above)
from botocore.config import Config  # noqa: E402

PORTICO_BIN = Path(os.environ.get("PORTICO_BIN", REPO / "target/debug/portico"))
NODE22 = Path(os.environ.get("PORTICO_NODEJS22_BIN", REPO / ".tools/node22/node_modules/node/bin/node"))
AWS_BIN = REPO / ".venv/bin/aws"
# AWS CLI v2 (Debian's awscli, installed by scripts/setup.sh): for commands v1 lacks (`logs tail`).
AWS2_BIN = Path(os.environ.get("PORTICO_AWS2_BIN", "/usr/bin/aws"))

# --- small helpers ----------------------------------------------------------------------


def make_zip(files: dict[str, str | bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A zip of `{name: source}`; `symlinks` adds `{name: target}` entries stored as links."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, src in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, src)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.create_system = 3  # unix, so the mode bits are honoured
            info.external_attr = 0o120777 << 16
            z.writestr(info, target)
    return buf.getvalue()


def code_sha256(zip_bytes: bytes) -> str:
    """Lambda's CodeSha256: base64 of the SHA-256 of the package."""
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@dataclass
class CurlResponse:
    status: int
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    header_lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def curl(url: str, method: str | None = None, headers: dict[str, str] | None = None,
         data: bytes | str | None = None, timeout: float = 35) -> CurlResponse:
    """Runs the real `curl` binary (it resolves *.localhost to loopback itself)."""
    with tempfile.TemporaryDirectory(prefix="portico-curl-") as d:
        hdr_file, body_file = Path(d) / "headers", Path(d) / "body"
        cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout),
               "-D", str(hdr_file), "-o", str(body_file), "-w", "%{http_code}"]
        if method:
            cmd += ["-X", method]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        if data is not None:
            data_file = Path(d) / "data"
            data_file.write_bytes(data.encode() if isinstance(data, str) else data)
            cmd += ["--data-binary", f"@{data_file}"]
        cmd.append(url)
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        assert p.returncode == 0, f"curl {url} failed ({p.returncode}): {p.stderr.decode()}"
        raw = hdr_file.read_bytes().decode("latin-1")
        # Keep the last header block (skips any 100 Continue).
        blocks = [b for b in raw.split("\r\n\r\n") if b.strip()]
        lines = blocks[-1].split("\r\n") if blocks else []
        pairs = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                pairs.append((k.strip().lower(), v.strip()))
        merged: dict[str, str] = {}
        for k, v in pairs:
            merged[k] = f"{merged[k]}, {v}" if k in merged else v
        return CurlResponse(int(p.stdout.decode().strip()), merged,
                            body_file.read_bytes() if body_file.exists() else b"", pairs)


# --- access keys and signing -------------------------------------------------------------

# endpoint -> (access key id, secret): the key each running Server signs with.
_KEYS: dict[str, tuple[str, str]] = {}


def read_credentials(path: Path, profile: str = "default") -> tuple[str, str]:
    """(access key id, secret) of a profile of an AWS shared-credentials file."""
    cp = configparser.ConfigParser()
    assert cp.read(path), f"{path} is missing"
    return cp[profile]["aws_access_key_id"], cp[profile]["aws_secret_access_key"]


def keys_create(data_dir: Path, account: str = ACCOUNT) -> tuple[str, str]:
    """`portico keys create --data-dir DIR --account-id ACCOUNT`: a new key, as
    (access key id, secret). Works while the server runs."""
    p = subprocess.run([str(PORTICO_BIN), "keys", "create", "--data-dir", str(data_dir), "--account-id", account],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")})
    assert p.returncode == 0, p.stderr
    cp = configparser.ConfigParser()
    cp.read_string(p.stdout)
    return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]


def credentials_for(endpoint: str) -> tuple[str, str]:
    """The key the suite signs calls to `endpoint` with."""
    assert endpoint in _KEYS, f"no key registered for {endpoint}: start it with Server(...).start()"
    return _KEYS[endpoint]


@contextlib.contextmanager
def signing_time(at: datetime.datetime):
    """Makes botocore sign as if it were `at` (UTC, naive) — for expired signatures."""
    import botocore.auth

    saved = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *a, **k: at
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = saved


def sign_headers(url: str, service: str, method: str = "GET", headers: dict[str, str] | None = None,
                 data: bytes | str | None = None, credentials: tuple[str, str] | None = None,
                 region: str = REGION) -> dict[str, str]:
    """`headers` plus X-Amz-Date and a SigV4 Authorization, as botocore's SigV4Auth (the
    CLI's signer) computes them for a raw request to `url`. The key defaults to the one
    registered for the URL's server."""
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = data.encode() if isinstance(data, str) else (data or b"")
    if credentials is None:
        u = urlsplit(url)
        credentials = credentials_for(f"{u.scheme}://{u.netloc}")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(*credentials), service, region).add_auth(req)
    return dict(req.headers.items())


def signed_curl(endpoint: str, path: str, service: str, method: str = "GET", headers: dict[str, str] | None = None,
                data: bytes | str | None = None, credentials: tuple[str, str] | None = None,
                region: str = REGION, timeout: float = 35) -> "CurlResponse":
    """curl of `endpoint + path`, signed with the endpoint's key (or `credentials`)."""
    url = endpoint + path
    signed = sign_headers(url, service, method, headers, data, credentials or credentials_for(endpoint), region)
    return curl(url, method=method, headers=signed, data=data, timeout=timeout)


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line or working directory mentions `text`."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            status = (entry / "status").read_text()
            if "\nState:\tZ" in status:
                continue  # a zombie about to be reaped holds nothing
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                cwd = ""
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if text in cmdline or cwd.startswith(text):
            found.append((int(entry.name), cmdline.strip()))
    return found


def wait_no_processes(text: str, timeout: float = 3.0) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout
    while True:
        left = processes_mentioning(text)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# --- the server -----------------------------------------------------------------------------


class Server:
    """One `portico serve` process on port 0 with its own data dir."""

    def __init__(self, data_dir: Path, log_path: Path, extra_args: tuple[str, ...] = ()):
        self.data_dir = Path(data_dir)
        self.extra_args = tuple(extra_args)
        self.sandbox_dir: Path | None = None
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.endpoint: str | None = None
        self.stdout_lines: list[str] = []

    def start(self, timeout: float = 30.0) -> "Server":
        assert PORTICO_BIN.is_file(), f"{PORTICO_BIN} is missing: run `cargo build -p portico` (or set PORTICO_BIN)"
        assert NODE22.is_file(), (
            f"Node.js 22 not found at {NODE22}: `mkdir -p .tools/node22 && cd .tools/node22 && npm install node@22`"
            " (or set PORTICO_NODEJS22_BIN)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
        env["PORTICO_NODEJS22_BIN"] = str(NODE22)
        env.setdefault("PORTICO_LOG", "info")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(PORTICO_BIN), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir),
             "--account-id", ACCOUNT, "--region", REGION, *self.extra_args],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, env=env,
        )
        ready = threading.Event()

        def pump():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stdout_lines.append(line)
                if line.startswith("Portico listening on http://"):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not any(l.startswith("Portico listening on") for l in self.stdout_lines):
            self.kill()
            raise AssertionError(f"portico did not print its listening line within {timeout}s; "
                                 f"stdout={self.stdout_lines!r}\nlog:\n{self.log_tail()}")
        line = next(l for l in self.stdout_lines if l.startswith("Portico listening on"))
        url = line.split()[3]
        assert url.startswith("http://127.0.0.1:"), line
        assert f"(data dir {self.data_dir})" in line, line
        self.endpoint = url
        self.port = int(url.rsplit(":", 1)[1])
        # The administrator key the data dir's first start wrote (a restart keeps it).
        self.credentials = read_credentials(self.data_dir / "credentials")
        _KEYS[self.endpoint] = self.credentials
        # As root, functions run from a sandbox directory of this instance's own
        # (`sandbox: users: uids A-B (DIR)`), not from the data dir.
        m = re.search(r"sandbox: users: uids \d+-\d+ \(([^)]+)\)", self.log_path.read_text(errors="replace"))
        self.sandbox_dir = Path(m.group(1)) if m else None
        return self

    def process_markers(self) -> list[str]:
        """Paths that the command line or working directory of every process this
        server started contains."""
        markers = [str(self.data_dir)]
        if self.sandbox_dir is not None:
            markers.append(f"{self.sandbox_dir}/")
        return markers

    def processes(self) -> list[tuple[int, str]]:
        """Live processes this server started (its own included)."""
        return sorted({p for m in self.process_markers() for p in processes_mentioning(m)})

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """SIGTERM (or `sig`); returns (exit code, seconds it took)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"portico did not exit within {timeout}s of SIGTERM\nlog:\n{self.log_tail()}")
        self.log.close()
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # URLs of an HTTP API
    def host_url(self, api_id: str, path: str = "/") -> str:
        return f"http://{api_id}.execute-api.localhost:{self.port}{path}"

    def path_url(self, api_id: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}/execute-api/{api_id}{path}"


def stop_and_check(server: Server, sig: int = signal.SIGTERM):
    rc, took = server.stop(sig=sig)
    assert rc == 0, f"portico exited with {rc} after {signal.Signals(sig).name}\nlog:\n{server.log_tail()}"
    left = [p for m in server.process_markers() for p in wait_no_processes(m)]
    assert not left, f"processes left behind after shutdown: {left}"
    return took


def _world_reachable(path) -> bool:
    """Whether every directory above `path` lets other users through (sandboxed
    functions run as their own users)."""
    p = os.path.realpath(path)
    while p != "/":
        p = os.path.dirname(p)
        if not os.stat(p).st_mode & 0o001:
            return False
    return True


# The host's Python 3, preferring one sandbox users can reach (a pyenv under /root is not).
HOST_PYTHON = next((p for p in ("/usr/bin/python3", shutil.which("python3")) if p and os.path.exists(p)
                    and _world_reachable(p)), shutil.which("python3"))


@pytest.fixture(scope="module")
def python_server(tmp_path_factory):
    """A module's own server whose Python functions run on HOST_PYTHON (`--python-bin`)."""
    assert HOST_PYTHON, "no python3 on PATH"
    base = tmp_path_factory.mktemp("portico-python")
    s = Server(base / "data", base / "portico.log", extra_args=("--python-bin", HOST_PYTHON)).start()
    yield s
    try:
        stop_and_check(s)
    finally:
        s.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("portico")
    s = Server(base / "data", base / "portico.log").start()
    yield s
    try:
        stop_and_check(s)
    finally:
        s.kill()


# --- clients --------------------------------------------------------------------------------


@dataclass
class CliResult:
    rc: int
    out: object  # parsed JSON, or the raw text when it is not JSON
    err: str

    def __iter__(self):  # allows `rc, out, err = aws(...)`
        return iter((self.rc, self.out, self.err))


def aws_env(endpoint: str, credentials: tuple[str, str] | None = None,
            env_extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment an AWS CLI process gets: the suite's client settings and the endpoint's
    key (or `credentials`) in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then `env_extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CLIENT_ENV, HOME=str(_CLIENT_HOME))
    key = credentials_for(endpoint) if credentials is None else credentials
    if key:
        env.update(AWS_ACCESS_KEY_ID=key[0], AWS_SECRET_ACCESS_KEY=key[1])
    env.update(env_extra or {})
    return env


def run_aws(endpoint: str, *args, cwd: Path | None = None, timeout: float = 60,
            credentials: tuple[str, str] | None = None, env_extra: dict[str, str] | None = None,
            cli: Path = AWS_BIN) -> CliResult:
    """Runs `aws --endpoint-url URL ARGS --output json` (CLI v1 from .venv, or `cli`) with
    `aws_env`'s environment. A single string argument is split as the shell would (so
    tutorial commands can be pasted). `env_extra` adds variables last (e.g.
    AWS_SHARED_CREDENTIALS_FILE with `credentials=()` to use a credentials file instead)."""
    if len(args) == 1 and isinstance(args[0], str):
        args = tuple(shlex.split(args[0]))
    if args and args[0] == "aws":
        args = args[1:]
    env = aws_env(endpoint, credentials, env_extra)
    cmd = [str(cli), "--endpoint-url", endpoint, *map(str, args), "--output", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    out: object = p.stdout
    if p.stdout.strip():
        try:
            out = json.loads(p.stdout)
        except json.JSONDecodeError:
            pass
    return CliResult(p.returncode, out, p.stderr)


@pytest.fixture(scope="session")
def aws(server):
    def _aws(*args, cwd=None):
        return run_aws(server.endpoint, *args, cwd=cwd)

    return _aws


CLIENT_CONFIG = Config(
    region_name=REGION,
    retries={"total_max_attempts": 1},  # an error is an answer to check, never to retry
    connect_timeout=5,
    read_timeout=60,
)


def boto_client(endpoint: str, service: str, credentials: tuple[str, str] | None = None, region: str = REGION):
    """A boto3 client for `endpoint`, signing with its key (or `credentials`)."""
    akid, secret = credentials or credentials_for(endpoint)
    return boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret, region_name=region).client(
        service, endpoint_url=endpoint, config=CLIENT_CONFIG.merge(Config(region_name=region)))


@pytest.fixture(scope="session")
def client(server):
    """`client("lambda")`, `client("apigatewayv2")`, `client("sts")` against the server."""
    cache = {}

    def _client(service: str):
        if service not in cache:
            cache[service] = boto_client(server.endpoint, service)
        return cache[service]

    return _client


@pytest.fixture(scope="session")
def lam(client):
    return client("lambda")


@pytest.fixture(scope="session")
def apigw(client):
    return client("apigatewayv2")


def wait_active(lam_client, name: str, timeout: float = 15.0) -> dict:
    """Polls GetFunction until State is Active and LastUpdateStatus is Successful."""
    deadline = time.monotonic() + timeout
    while True:
        cfg = lam_client.get_function(FunctionName=name)["Configuration"]
        if cfg["State"] == "Active" and cfg.get("LastUpdateStatus") in (None, "Successful"):
            return cfg
        assert cfg["State"] in ("Pending", "Active"), f"{name} is {cfg['State']}: {cfg.get('StateReason')}"
        assert time.monotonic() < deadline, f"{name} still {cfg['State']}/{cfg.get('LastUpdateStatus')} after {timeout}s"
        time.sleep(0.05)


def create_function(lam_client, name: str, files: dict[str, str], handler: str = "index.handler",
                    runtime: str = "nodejs22.x", **extra) -> dict:
    """CreateFunction from `{file: source}` and wait until it is Active."""
    out = lam_client.create_function(
        FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
        Code={"ZipFile": make_zip(files)}, **extra,
    )
    wait_active(lam_client, name)
    return out


def allow_api(lam_client, name: str, api_id: str, sid: str | None = None):
    """Lets every route and stage of `api_id` invoke `name`."""
    lam_client.add_permission(
        FunctionName=name, StatementId=sid or unique("apigw"), Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*",
    )


def assert_in_own_cgroups(body):
    """`body`: what function code saw at init: `atInit`, its /proc/self/cgroup, and
    `awaitVar`, its _PORTICO_AWAIT_SANDBOX. Every memory, cpu and pids hierarchy (v1), or
    else the unified one (v2), must place it in an environment's cgroup (`.../env-N`)."""
    entries = [line.split(":", 2) for line in body["atInit"].splitlines()]  # id:controllers:path
    v1 = [path for _, controllers, path in entries if {"memory", "cpu", "pids"} & set(controllers.split(","))]
    v2 = [path for _, controllers, path in entries if controllers == ""]
    joined = v1 or v2
    assert joined and all("/env-" in path for path in joined), body["atInit"]
    assert body["awaitVar"] is None, "the hand-shake variable is the runtime client's, not the function's"


def error_of(excinfo) -> tuple[str, int]:
    """(error code, HTTP status) of a botocore ClientError."""
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


HELLO_SRC = (REPO / "examples/hello-api/index.mjs").read_text()


# --- a loopback recorder functions report to -----------------------------------------------


class Recorder:
    """Collects what functions POST to it."""

    def __init__(self):
        self.posts: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                recorder.posts.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def tagged(self, tag):
        return [p for p in self.posts if p.get("tag") == tag]

    def wait_for(self, tag, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.tagged(tag)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.tagged(tag)


@pytest.fixture(scope="session")
def recorder():
    r = Recorder()
    yield r
    r.httpd.shutdown()
