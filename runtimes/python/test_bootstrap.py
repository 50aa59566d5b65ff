"""bootstrap.py against a fake Runtime API: one process per test, fed invocations,
asserting what it posts, what it logs and how it exits.

Run: python3 -m pytest -q runtimes/python/test_bootstrap.py
"""

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BOOTSTRAP = Path(__file__).resolve().parent / "bootstrap.py"
PREFIX = "/2018-06-01/runtime/"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:py-test"


class FakeRuntimeApi:
    """A Runtime API serving one environment: invocations are fed with `invoke`."""

    def __init__(self):
        self.invocations: "queue.Queue[tuple[str, bytes, dict]]" = queue.Queue()
        self.outcomes: dict[str, "queue.Queue[dict]"] = {}
        self.init_error: "queue.Queue[dict]" = queue.Queue()
        self.requests: list[dict] = []
        # Portico's sandbox hand-shake: answered with `sandbox_status` and `sandbox_body`
        # once the gate opens.
        self.sandbox_gate = threading.Event()
        self.sandbox_status = 200
        self.sandbox_body = b'{"status":"OK"}'
        # A spare's wait for its function: answered with `assignment_status` and
        # `assignment_body` once the gate opens; `assignment_asked` is set on the request.
        self.assignment_asked = threading.Event()
        self.assignment_gate = threading.Event()
        self.assignment_status = 200
        self.assignment_body = b""
        # Whether an outcome posted with Portico-Then-Next is answered by the next
        # invocation, as Portico does (else with a 202, as AWS does).
        self.then_next = True
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as AWS's Runtime API
            # As Portico's Runtime API (set_nodelay): a response's headers and body, written
            # apart, would otherwise wait for the runtime's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def setup(self):
                # Not on the UNIX socket a runtime inherits: it has no Nagle to disable.
                self.disable_nagle_algorithm = self.request.family != socket.AF_UNIX
                super().setup()

            def log_message(self, *args):
                pass

            def do_GET(self):
                api.requests.append({"method": "GET", "path": self.path, "peer": self.client_address})
                if self.path == PREFIX + "portico/sandbox":
                    api.sandbox_gate.wait()
                    return self.answer(api.sandbox_status, api.sandbox_body)
                if self.path == PREFIX + "portico/assignment":
                    api.assignment_asked.set()
                    api.assignment_gate.wait()
                    return self.answer(api.assignment_status, api.assignment_body)
                if self.path != PREFIX + "invocation/next":
                    return self.answer(404, b'{"errorType":"NotFound"}')
                self.next_invocation()

            def next_invocation(self):
                """Answers as GET /next: the next invocation fed with `invoke`."""
                request_id, payload, headers = api.invocations.get()
                if request_id is None:
                    return self.answer(410, b'{"errorType":"Gone"}')
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 3000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                record = {
                    "method": "POST",
                    "path": self.path,
                    "peer": self.client_address,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
                api.requests.append(record)
                if self.path == PREFIX + "init/error":
                    api.init_error.put(record)
                    return self.answer(202, b'{"status":"OK"}')
                m = re.fullmatch(re.escape(PREFIX) + r"invocation/([^/]+)/(response|error)", self.path)
                if not m or m.group(1) not in api.outcomes:
                    return self.answer(400, b'{"errorType":"InvalidRequestID"}')
                record["kind"] = m.group(2)
                api.outcomes[m.group(1)].put(record)
                if api.then_next and "portico-then-next" in record["headers"]:
                    # Portico's extension: the next invocation answers the outcome.
                    return self.next_invocation()
                self.answer(202, b'{"status":"OK"}')

            def answer(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.address = "127.0.0.1:%d" % self.server.server_address[1]

    def invoke(self, event, timeout=10.0, headers=None) -> dict:
        """Hands `event` to the runtime and returns what it posted for it."""
        request_id = str(uuid.uuid4())
        self.outcomes[request_id] = queue.Queue()
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        self.invocations.put((request_id, payload, headers or {}))
        outcome = self.outcomes[request_id].get(timeout=timeout)
        outcome["request_id"] = request_id
        return outcome

    def close(self):
        self.invocations.put((None, b"", {}))
        self.server.shutdown()
        self.server.server_close()


class Runtime:
    """bootstrap.py started the way Portico starts it: clean environment, cwd = task root."""

    def __init__(self, api: FakeRuntimeApi, task_root: Path, handler: str, extra_env=None, env=None, inherit=None):
        self.task_root = task_root
        env = env or {
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "PYTHONPATH": str(BOOTSTRAP.parent),
            "AWS_LAMBDA_FUNCTION_NAME": "py-test",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/py-test",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/26/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            **(extra_env or {}),
        }
        if inherit is not None:
            # As Portico starts its own client: its first connection ready-made.
            env["_PORTICO_RUNTIME_API_FD"] = str(inherit.fileno())
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(BOOTSTRAP)],
            cwd=task_root,
            env=env,
            pass_fds=() if inherit is None else (inherit.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self.chunks.append(chunk)

    def output(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def output_with(self, needle: str, timeout=5.0) -> str:
        """The output once it holds `needle`: the reader thread may lag behind the runtime's post."""
        deadline = time.monotonic() + timeout
        while needle not in (out := self.output()) and time.monotonic() < deadline:
            time.sleep(0.01)
        return out

    def wait(self, timeout=10.0) -> int:
        rc = self.proc.wait(timeout)
        self.reader.join(timeout)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(5)


@pytest.fixture
def api():
    a = FakeRuntimeApi()
    yield a
    a.close()


@pytest.fixture
def start(api, tmp_path):
    """`start({file: source}, handler)` runs bootstrap.py on a task root of those files."""
    started = []

    def _start(files: dict, handler: str, env=None, inherit=None) -> Runtime:
        root = tmp_path / "task"
        root.mkdir(exist_ok=True)
        for name, src in files.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(src)
        r = Runtime(api, root, handler, env, inherit=inherit)
        started.append(r)
        return r

    yield _start
    for r in started:
        r.stop()


def body_json(outcome):
    return json.loads(outcome["body"])


ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


# --- success --------------------------------------------------------------------------


def test_returns_json_and_reuses_one_connection(api, start):
    start({"app.py": "def handler(event, context):\n    return {'echo': event, 'n': 1}\n"}, "app.handler")
    outcomes = [api.invoke({"i": i}) for i in range(3)]
    for i, o in enumerate(outcomes):
        assert o["kind"] == "response"
        assert o["headers"]["content-type"] == "application/json"
        # awslambdaric's encoder keeps json's default separators.
        assert o["body"] == ('{"echo": {"i": %d}, "n": 1}' % i).encode()
    # Every GET and POST of the loop went over one kept-alive connection.
    peers = {r["peer"] for r in api.requests}
    assert len(peers) == 1, api.requests


def test_an_inherited_socket_carries_the_loop_and_is_not_the_functions(api, start):
    ours, theirs = socket.socketpair()
    api.server.process_request(ours, "inherited")
    src = "import os\ndef handler(event, context):\n    return os.environ.get('_PORTICO_RUNTIME_API_FD')\n"
    start({"app.py": src}, "app.handler", inherit=theirs)
    theirs.close()
    outcomes = [api.invoke({"i": i}) for i in range(3)]
    assert [o["body"] for o in outcomes] == [b"null"] * 3
    # No request went to AWS_LAMBDA_RUNTIME_API's listener.
    assert {r["peer"] for r in api.requests} == {"inherited"}, api.requests
    # Portico's extension: each outcome asked for the next invocation as its answer, so
    # one GET began the loop and none followed.
    assert [r["method"] for r in api.requests] == ["GET", "POST", "POST", "POST"], api.requests
    assert all(r["headers"]["portico-then-next"] == "1" for r in api.requests[1:])


def test_without_the_extension_an_outcome_is_followed_by_a_get(api, start):
    """Against a Runtime API that answers an outcome with a 202 even when asked for the
    next invocation (AWS's), the client asks for it with GET /next."""
    ours, theirs = socket.socketpair()
    api.server.process_request(ours, "inherited")
    start({"app.py": "def handler(event, context):\n    return event\n"}, "app.handler", inherit=theirs)
    theirs.close()
    api.then_next = False
    assert [body_json(api.invoke({"i": i})) for i in range(2)] == [{"i": 0}, {"i": 1}]
    deadline = time.monotonic() + 5
    while len(api.requests) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)  # the last GET follows the 202
    assert [r["method"] for r in api.requests] == ["GET", "POST", "GET", "POST", "GET"], api.requests


def test_context_object(api, start):
    src = (
        "def handler(event, context):\n"
        "    return {k: getattr(context, k) for k in ('function_name', 'function_version',\n"
        "        'invoked_function_arn', 'memory_limit_in_mb', 'aws_request_id', 'log_group_name',\n"
        "        'log_stream_name')} | {'remaining': context.get_remaining_time_in_millis(),\n"
        "        'cc': context.client_context.custom if context.client_context else None,\n"
        "        'cc_client': context.client_context.client.app_title if context.client_context else None,\n"
        "        'identity': [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id]}\n"
    )
    if sys.version_info < (3, 9):
        pytest.skip("dict | dict needs Python 3.9")
    start({"ctx.py": src}, "ctx.handler")
    o = api.invoke(
        {},
        headers={
            "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}, "client": {"app_title": "t"}}),
            "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id1", "cognitoIdentityPoolId": "p1"}),
        },
    )
    got = body_json(o)
    assert got["function_name"] == "py-test"
    assert got["function_version"] == "$LATEST"
    assert got["invoked_function_arn"] == FUNCTION_ARN
    assert got["memory_limit_in_mb"] == "128"  # a string, as on AWS
    assert got["aws_request_id"] == o["request_id"]
    assert got["log_group_name"] == "/aws/lambda/py-test"
    assert got["log_stream_name"].startswith("2026/11/26/[$LATEST]")
    assert 0 < got["remaining"] <= 3000
    assert got["cc"] == {"k": "v"} and got["cc_client"] == "t"
    assert got["identity"] == ["id1", "p1"]


def test_bytes_response_is_raw(api, start):
    src = "def raw(event, context):\n    return b'\\x00\\xffraw'\n"
    start({"r.py": src}, "r.raw")
    o = api.invoke({})
    assert o["body"] == b"\x00\xffraw"
    assert o["headers"]["content-type"] == "application/unknown"


@pytest.mark.parametrize("env, word", [("AWS_Lambda_python3.12", "h\u00e9"), ("AWS_Lambda_python3.11", "h\\u00e9")])
def test_json_encoding_follows_the_runtime(api, start, env, word):
    src = "import decimal\ndef dec(event, context):\n    return {'pi': decimal.Decimal('3.14159'), 'word': 'h\\u00e9'}\n"
    start({"r.py": src}, "r.dec", {"AWS_EXECUTION_ENV": env})
    o = api.invoke({})
    assert o["body"].decode() == '{"pi": 3.14159, "word": "%s"}' % word


def test_dotted_and_slashed_handlers(api, start, tmp_path):
    files = {"pkg/__init__.py": "", "pkg/mod.py": "def run(event, context):\n    return 'pkg'\n"}
    start(files, "pkg/mod.run")
    assert api.invoke({})["body"] == b'"pkg"'


def test_dotted_package_handler(api, start):
    files = {"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/sub/mod.py": "def run(e, c):\n    return 42\n"}
    start(files, "pkg.sub.mod.run")
    assert api.invoke({})["body"] == b"42"


def test_task_root_heads_sys_path(api, start):
    src = "import sys, os\ndef h(e, c):\n    return [sys.path[0], os.environ.get('PYTHONPATH') in sys.path]\n"
    r = start({"p.py": src}, "p.h")
    root, has_runtime_dir = body_json(api.invoke({}))
    assert root == str(r.task_root)
    assert has_runtime_dir


# --- invocation errors ------------------------------------------------------------------


def test_raised_exception_is_posted_and_logged(api, start):
    src = "def handler(event, context):\n    raise ValueError('bad thing happened')\n"
    r = start({"boom.py": src}, "boom.handler")
    o = api.invoke({})
    assert o["kind"] == "error"
    assert o["headers"]["lambda-runtime-function-error-type"] == "ValueError"
    doc = body_json(o)
    assert list(doc) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert doc["errorType"] == "ValueError"
    assert doc["errorMessage"] == "bad thing happened"
    assert doc["requestId"] == o["request_id"]
    # The trace starts at the function's frame: the runtime's own frames are cut.
    assert len(doc["stackTrace"]) == 1, doc
    assert re.fullmatch(r'  File ".*/boom\.py", line 2, in handler\n    raise ValueError\(.bad thing happened.\)\n',
                        doc["stackTrace"][0]), doc
    # The runtime goes on serving.
    assert api.invoke({})["kind"] == "error"
    out = r.output_with("raise ValueError('bad thing happened')\n")
    nbsp = "\u00a0"
    assert ("[ERROR] ValueError: bad thing happened\rTraceback (most recent call last):\r"
            f"{nbsp * 2}File ") in out, repr(out)
    assert f"\r{nbsp * 4}raise ValueError('bad thing happened')\n" in out, repr(out)


def test_unserializable_result_is_a_marshal_error(api, start):
    start({"m.py": "def h(e, c):\n    return {1, 2}\n"}, "m.h")
    doc = body_json(api.invoke({}))
    assert doc["errorType"] == "Runtime.MarshalError"
    assert doc["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


# --- init errors ----------------------------------------------------------------------------


def init_error(api, r):
    record = api.init_error.get(timeout=10)
    assert r.wait() == 1
    return record, json.loads(record["body"])


def test_missing_module(api, start):
    r = start({"other.py": ""}, "nothere.handler")
    record, doc = init_error(api, r)
    assert doc == {
        "errorMessage": "Unable to import module 'nothere': No module named 'nothere'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert record["headers"]["lambda-runtime-function-error-type"] == "Runtime.ImportModuleError"
    out = r.output()
    assert re.search(r"\[WARNING\]\t" + ISO_Z + r"\t\tLAMBDA_WARNING: Unhandled exception\. ", out), out
    assert ("[ERROR] Runtime.ImportModuleError: Unable to import module 'nothere': No module named 'nothere'"
            "\rTraceback (most recent call last):\n") in out, repr(out)


def test_handler_missing(api, start):
    r = start({"app.py": "def other(e, c):\n    pass\n"}, "app.handler")
    _, doc = init_error(api, r)
    assert doc["errorType"] == "Runtime.HandlerNotFound"
    assert doc["errorMessage"] == "Handler 'handler' missing on module 'app'"


def test_syntax_error(api, start):
    r = start({"bad.py": "def handler(:\n    pass\n"}, "bad.handler")
    _, doc = init_error(api, r)
    assert doc["errorType"] == "Runtime.UserCodeSyntaxError"
    assert doc["errorMessage"].startswith("Syntax error in module 'bad': "), doc
    assert re.fullmatch(r'  File ".*/bad\.py" Line 1\n    def handler\(:\n', doc["stackTrace"][0]), doc


def test_malformed_handler_name(api, start):
    r = start({"app.py": ""}, "nodot")
    _, doc = init_error(api, r)
    assert doc["errorType"] == "Runtime.MalformedHandlerName"
    assert doc["errorMessage"] == "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)"


def test_builtin_module_conflict(api, start):
    r = start({}, "sys.handler")
    _, doc = init_error(api, r)
    assert doc["errorType"] == "Runtime.BuiltInModuleConflict"
    assert doc["errorMessage"] == "Cannot use built-in module sys as a handler module"


def test_exception_at_import(api, start):
    r = start({"app.py": "raise KeyError('config')\ndef handler(e, c):\n    pass\n"}, "app.handler")
    _, doc = init_error(api, r)
    assert doc["errorType"] == "KeyError"
    assert doc["errorMessage"] == "'config'"
    assert any("app.py" in frame for frame in doc["stackTrace"]), doc


# --- logging ------------------------------------------------------------------------------------


def test_logging_format_and_print(api, start):
    src = (
        "import logging\n"
        "log = logging.getLogger()\n"
        "def handler(event, context):\n"
        "    print('plain print')\n"
        "    log.warning('careful %s', 'now')\n"
        "    log.info('not shown at the default level')\n"
        "    log.error('two\\nlines')\n"
        "    return 1\n"
    )
    r = start({"lg.py": src}, "lg.handler")
    o = api.invoke({})
    out = r.output_with("lines\n")
    rid = re.escape(o["request_id"])
    assert "plain print\n" in out
    assert re.search(r"^\[WARNING\]\t" + ISO_Z + r"\t" + rid + r"\tcareful now\n", out, re.M), repr(out)
    # One record, one line: a newline inside a record is a carriage return.
    assert re.search(r"^\[ERROR\]\t" + ISO_Z + r"\t" + rid + r"\ttwo\rlines\n", out, re.M), repr(out)
    assert "not shown" not in out


def test_log_level_from_function_configuration(api, start):
    src = "import logging\ndef handler(e, c):\n    logging.getLogger().info('shown')\n    logging.debug('hidden')\n"
    r = start({"lv.py": src}, "lv.handler", {"AWS_LAMBDA_LOG_LEVEL": "INFO"})
    o = api.invoke({})
    out = r.output_with("shown\n")
    assert re.search(r"^\[INFO\]\t" + ISO_Z + r"\t" + re.escape(o["request_id"]) + r"\tshown\n", out, re.M), out
    assert "hidden" not in out


def test_output_is_unbuffered(api, start):
    # Portico reads an invocation's log right after its outcome: nothing may wait in a buffer.
    r = start({"o.py": "def h(e, c):\n    print('x' * 100)\n    return 0\n"}, "o.h")
    api.invoke({})
    assert "x" * 100 in r.output_with("x" * 100, timeout=2)


def test_exits_quietly_when_the_environment_stops(api, start):
    r = start({"a.py": "def h(e, c):\n    return 0\n"}, "a.h")
    api.invoke({})
    api.invocations.put((None, b"", {}))
    assert r.wait() == 0


def test_waits_for_the_sandbox_before_importing_the_function(api, start):
    src = "print('module loaded')\nimport os\ndef h(e, c):\n    return os.environ.get('_PORTICO_AWAIT_SANDBOX', 'unset')\n"
    r = start({"sb.py": src}, "sb.h", {"_PORTICO_AWAIT_SANDBOX": "1"})
    time.sleep(0.3)
    assert r.output() == ""
    assert [q["path"] for q in api.requests] == [PREFIX + "portico/sandbox"]
    api.sandbox_gate.set()
    assert body_json(api.invoke({})) == "unset"
    assert "module loaded" in r.output_with("module loaded")


def test_a_sandbox_portico_could_not_complete_runs_no_function_code(api, start):
    api.sandbox_status = 500
    api.sandbox_gate.set()
    r = start({"sb.py": "print('module loaded')\ndef h(e, c):\n    return 1\n"}, "sb.h", {"_PORTICO_AWAIT_SANDBOX": "1"})
    assert r.wait() == 1
    assert "module loaded" not in r.output()
    assert "The sandbox is not ready: HTTP status 500" in r.output()


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "OK"},
        {"status": "OK", "spare": False},
        # No longer how a function is assigned: ignored (applied, it would make this start fail).
        {"status": "OK", "assignment": {"environment": {"_HANDLER": "other.h"}, "taskRoot": "/nonexistent"}},
    ],
)
def test_an_environment_that_is_no_spare_asks_for_no_assignment(api, start, answer):
    api.sandbox_body = json.dumps(answer).encode()
    api.sandbox_gate.set()
    src = "import os\ndef h(e, c):\n    return [os.getcwd(), os.environ['AWS_LAMBDA_FUNCTION_NAME']]\n"
    r = start({"ns.py": src}, "ns.h", {"_PORTICO_AWAIT_SANDBOX": "1"})
    assert body_json(api.invoke({})) == [str(r.task_root), "py-test"]
    # Function code ran, so the hand-shake was over: it never asked for an assignment.
    assert [q["path"] for q in api.requests][:2] == [PREFIX + "portico/sandbox", PREFIX + "invocation/next"]
    assert not any(q["path"] == PREFIX + "portico/assignment" for q in api.requests)
    assert not api.assignment_asked.is_set()


# --- spares: started before their function is known, then assigned it ---------------------------


SPARE_ANSWER = b'{"status":"OK","spare":true}'


def write_files(root: Path, files: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        (root / name).write_text(src)
    return root


def function_environment(api, root: Path, **extra) -> dict:
    """The environment Portico gives a function of task root `root` and handler app.handler."""
    return {
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": str(root),
        "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
        "PYTHONPATH": str(BOOTSTRAP.parent),
        "AWS_LAMBDA_FUNCTION_NAME": "py-spare",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "7",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/py-spare",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/26/[7]fedcba9876543210fedcba9876543210",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **extra,
    }


def assign(api, answer, status=200):
    """Answers the spare's GET /portico/assignment."""
    api.assignment_status = status
    api.assignment_body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    api.assignment_gate.set()


def assignment(environment: dict, task_root: Path) -> dict:
    return {"environment": environment, "taskRoot": str(task_root)}


@pytest.fixture
def spare(api, tmp_path):
    """`spare()` starts bootstrap.py as Portico starts a spare: minimal environment (plus
    STRAY=1), in a directory holding a decoy of the function's module app.py; the sandbox
    answer (`sandbox_answer`) tells it it is a spare."""
    started = []

    def _spare(sandbox_answer=SPARE_ANSWER) -> Runtime:
        api.sandbox_body = sandbox_answer
        api.sandbox_gate.set()
        decoy = "print('decoy loaded')\ndef handler(e, c):\n    return 'decoy'\n"
        cwd = write_files(tmp_path / "spare", {"app.py": decoy})
        env = {
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_PORTICO_AWAIT_SANDBOX": "1",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "TMPDIR": str(tmp_path),
            "PYTHONPATH": str(BOOTSTRAP.parent),
            "STRAY": "1",
        }
        r = Runtime(api, cwd, "", env=env)
        started.append(r)
        return r

    yield _spare
    for r in started:
        r.stop()


def test_a_spare_runs_the_function_it_is_assigned(api, spare, tmp_path):
    src = (
        "import logging, os, sys\n"
        "print('function loaded')\n"
        "def handler(event, context):\n"
        "    logging.warning('warning below the level')\n"
        "    logging.info('info below the level')\n"
        "    logging.error('error at the level')\n"
        "    return {'environ': dict(os.environ), 'cwd': os.getcwd(), 'path': sys.path, 'word': 'h\\u00e9',\n"
        "            'context': [context.function_name, context.memory_limit_in_mb, context.function_version,\n"
        "                        context.log_group_name, context.log_stream_name]}\n"
    )
    root = write_files(tmp_path / "fn", {"app.py": src})
    r = spare()
    assert api.assignment_asked.wait(10)
    time.sleep(0.3)
    # Waiting for its function, it has written nothing (it would be no function's output).
    assert r.output() == ""
    assert r.proc.poll() is None
    assert [q["path"] for q in api.requests] == [PREFIX + "portico/sandbox", PREFIX + "portico/assignment"]
    environment = function_environment(api, root, AWS_LAMBDA_LOG_LEVEL="ERROR", CUSTOM="custom value")
    assign(api, assignment(environment, root))
    o = api.invoke({})
    assert o["kind"] == "response", o
    got = body_json(o)
    # Exactly the function's environment (and the invocation's trace id).
    assert got["environ"].pop("_X_AMZN_TRACE_ID")
    assert "STRAY" not in got["environ"] and "_PORTICO_AWAIT_SANDBOX" not in got["environ"]
    assert got["environ"] == environment
    assert got["cwd"] == str(root)
    assert got["path"][0] == str(root)
    assert str(r.task_root) not in got["path"]
    assert str(BOOTSTRAP.parent) in got["path"]
    assert got["context"] == [
        "py-spare", "256", "7", "/aws/lambda/py-spare", "2026/11/26/[7]fedcba9876543210fedcba9876543210"
    ]
    # The function's AWS_EXECUTION_ENV (python3.12) writes non-ASCII characters as they are.
    assert '"word": "h\u00e9"' in o["body"].decode()
    out = r.output_with("error at the level\n")
    assert out.startswith("function loaded\n"), repr(out)
    assert "decoy" not in out
    rid = re.escape(o["request_id"])
    assert re.search(r"^\[ERROR\]\t" + ISO_Z + r"\t" + rid + r"\terror at the level\n", out, re.M), repr(out)
    # The function's AWS_LAMBDA_LOG_LEVEL applies: WARNING and INFO are below ERROR.
    assert "below the level" not in out
    # The hand-shake, the wait and the invocations share one kept-alive connection.
    assert len({q["peer"] for q in api.requests}) == 1, api.requests


def test_a_spare_takes_pythonpath_and_time_zone_from_the_assignment(api, spare, tmp_path):
    lib = write_files(tmp_path / "lib", {"extra.py": "VALUE = 'from lib'\n"})
    src = (
        "import sys, time, extra\n"
        "def handler(e, c):\n"
        "    return [extra.VALUE, sys.path[:3], time.strftime('%Z'), time.localtime().tm_gmtoff]\n"
    )
    root = write_files(tmp_path / "fn", {"app.py": src})
    spare()
    pythonpath = "%s:%s" % (lib, BOOTSTRAP.parent)
    assign(api, assignment(function_environment(api, root, PYTHONPATH=pythonpath, TZ="JST-9"), root))
    assert body_json(api.invoke({})) == ["from lib", [str(root), str(lib), str(BOOTSTRAP.parent)], "JST", 9 * 3600]


@pytest.mark.parametrize(
    "answer, message",
    [
        (b"OK", "The sandbox answer is malformed: not JSON: "),
        (b'["OK"]', "The sandbox answer is malformed: not a JSON object\n"),
        (b'{"status":"OK","spare":"true"}', "The sandbox answer is malformed: spare is not a boolean\n"),
        (b'{"status":"OK","spare":1}', "The sandbox answer is malformed: spare is not a boolean\n"),
    ],
)
def test_a_malformed_sandbox_answer_is_fatal(api, spare, answer, message):
    r = spare(answer)
    assert r.wait() == 1
    out = r.output()
    assert message in out and out.count("\n") == 1, repr(out)
    assert "decoy" not in out
    assert [q["path"] for q in api.requests] == [PREFIX + "portico/sandbox"]


@pytest.mark.parametrize(
    "answer, message",
    [
        (b"OK", "The assignment is malformed: not JSON: "),
        (b'["OK"]', "The assignment is malformed: not a JSON object\n"),
        (b'"app"', "The assignment is malformed: not a JSON object\n"),
        ({"taskRoot": "/"}, "The assignment is malformed: environment is not an object of strings\n"),
        ({"environment": [["SECRET", "s3cr3t"]], "taskRoot": "/"}, "environment is not an object of strings\n"),
        ({"environment": {"SECRET": "s3cr3t", "N": 1}, "taskRoot": "/"}, "environment is not an object of strings\n"),
        ({"environment": {"SECRET": "s3cr3t"}}, "The assignment is malformed: taskRoot is not an absolute path\n"),
        ({"environment": {}, "taskRoot": 42}, "taskRoot is not an absolute path\n"),
        ({"environment": {}, "taskRoot": "fn"}, "taskRoot is not an absolute path\n"),
        # The old form, the assignment inside a sandbox answer, is no assignment.
        ({"status": "OK", "assignment": {"environment": {"SECRET": "s3cr3t"}, "taskRoot": "/"}},
         "environment is not an object of strings\n"),
        ({"environment": {"SECRET": "s3cr3t", "A=B": "1"}, "taskRoot": "/"},
         "The assignment is malformed: environment: "),
        ({"environment": {}, "taskRoot": "/nonexistent/portico-task-root"},
         "The assignment is unusable: taskRoot: No such file or directory\n"),
    ],
)
def test_a_malformed_assignment_is_fatal(api, spare, answer, message):
    r = spare()
    assign(api, answer)
    assert r.wait() == 1
    out = r.output()
    # One line, the reason, and nothing of the environment's values.
    assert message in out and out.count("\n") == 1, repr(out)
    assert "decoy" not in out and "s3cr3t" not in out
    assert [q["path"] for q in api.requests] == [PREFIX + "portico/sandbox", PREFIX + "portico/assignment"]


@pytest.mark.parametrize("status", [404, 500, 503])
def test_a_failed_assignment_is_fatal(api, spare, status):
    r = spare()
    error = b'{"errorType":"ServiceException","errorMessage":"Portico is stopping"}'
    assign(api, error, status)
    assert r.wait() == 1
    out = r.output()
    assert out == "The assignment failed: HTTP status %d: %s\n" % (status, error.decode()), repr(out)
    assert [q["path"] for q in api.requests] == [PREFIX + "portico/sandbox", PREFIX + "portico/assignment"]
