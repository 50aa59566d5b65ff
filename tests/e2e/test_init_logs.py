"""A cold start's log stream as Lambda writes it: INIT_START first, then what the function's
init (top-level) code wrote, then START and the invocation's own lines, END and REPORT; a
warm invocation has no INIT_START and no init. `LogType=Tail` of a cold start begins with
the init output (without INIT_START), as AWS's does. Node.js and Python functions, the
latter in another region than the server's default (the INIT_START ARN names the
function's region)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from conftest import (
    REGION, ROLE, assert_in_own_cgroups, boto_client, make_zip, unique, wait_active,
)

OTHER_REGION = "eu-west-1"

NODE_SRC = """
console.log("init line from module scope");
export const handler = async (event) => {
  console.log("invocation line", event.n);
  return { n: event.n };
};
"""

PYTHON_SRC = """
import time
time.sleep(0.2)  # init outlasts the hand-over of the first invocation
print("init line from module scope")

def handler(event, context):
    print("invocation line", event["n"])
    return {"n": event["n"]}
"""

PYTHON_INIT_ERROR_SRC = """
print("init line from module scope")
raise RuntimeError("init failed")

def handler(event, context):
    return {}
"""

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
RID = r"[0-9a-f-]{36}"


def init_start(runtime_version: str, region: str) -> re.Pattern:
    return re.compile(rf"^INIT_START Runtime Version: {re.escape(runtime_version)}\.v\d+\t"
                      rf"Runtime Version ARN: arn:aws:lambda:{region}::runtime:[0-9a-f]{{64}}\n$")


def report(rid: str, cold: bool) -> re.Pattern:
    init = r"Init Duration: \d+\.\d{2} ms\t" if cold else ""
    return re.compile(rf"^REPORT RequestId: {rid}\tDuration: \d+\.\d{{2}} ms\tBilled Duration: \d+ ms\t"
                      rf"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t{init}\n$")


@pytest.fixture(scope="module")
def srv(python_server):
    """This module's own server, with a Python for python3.12 functions."""
    return python_server


def create(lam, name: str, runtime: str, handler: str, files: dict[str, str]):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": make_zip(files)})
    wait_active(lam, name)


def invoke(lam, name: str, n: int, tail: bool = False):
    r = lam.invoke(FunctionName=name, Payload=json.dumps({"n": n}).encode(), LogType="Tail" if tail else "None")
    body = json.loads(r["Payload"].read())
    log = base64.b64decode(r["LogResult"]).decode() if tail else None
    return r, body, log


def stream_messages(logs, name: str) -> list[str]:
    group = f"/aws/lambda/{name}"
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert len(streams) == 1, streams  # one environment
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"],
                                 startFromHead=True)["events"]
    return [e["message"] for e in events]


def cold_then_warm(srv, region: str, runtime: str, handler: str, files: dict[str, str]):
    """Invokes a new function twice (the first with LogType Tail); returns the request ids,
    the first invocation's tail and the stream's messages."""
    lam = boto_client(srv.endpoint, "lambda", region=region)
    logs = boto_client(srv.endpoint, "logs", region=region)
    name = unique("init-logs")
    create(lam, name, runtime, handler, files)
    rids = []
    tail = None
    for n in (1, 2):
        r, body, log = invoke(lam, name, n, tail=n == 1)
        assert "FunctionError" not in r and body == {"n": n}, body
        rids.append(r["ResponseMetadata"]["RequestId"])
        tail = tail or log
    # The runtime version the function's configuration names is the one INIT_START names.
    arn = lam.get_function_configuration(FunctionName=name)["RuntimeVersionConfig"]["RuntimeVersionArn"]
    messages = stream_messages(logs, name)
    assert messages[0].endswith(f"\tRuntime Version ARN: {arn}\n"), (arn, messages[0])
    return rids, tail, messages


def test_node_init_output_comes_between_init_start_and_start(srv):
    (rid1, rid2), tail, messages = cold_then_warm(srv, REGION, "nodejs22.x", "index.handler",
                                                 {"index.mjs": NODE_SRC})
    assert len(messages) == 10, messages
    assert init_start("nodejs:22", REGION).match(messages[0]), messages[0]
    # Written outside any invocation: the record's request id is "undefined", as on Lambda.
    assert re.match(rf"^{ISO}\tundefined\tINFO\tinit line from module scope\n$", messages[1]), messages[1]
    assert messages[2] == f"START RequestId: {rid1} Version: $LATEST\n"
    assert re.match(rf"^{ISO}\t{rid1}\tINFO\tinvocation line 1\n$", messages[3]), messages[3]
    assert messages[4] == f"END RequestId: {rid1}\n"
    assert report(rid1, cold=True).match(messages[5]), messages[5]
    # Warm: no INIT_START, no init output, no Init Duration.
    assert messages[6] == f"START RequestId: {rid2} Version: $LATEST\n"
    assert re.match(rf"^{ISO}\t{rid2}\tINFO\tinvocation line 2\n$", messages[7]), messages[7]
    assert messages[8] == f"END RequestId: {rid2}\n"
    assert report(rid2, cold=False).match(messages[9]), messages[9]
    assert sum(m.startswith("INIT_START") for m in messages) == 1
    # The cold start's tail: its init output, then START to REPORT (not INIT_START).
    assert tail == "".join(messages[1:6]), tail


def test_python_init_output_comes_between_init_start_and_start(srv):
    (rid1, rid2), tail, messages = cold_then_warm(srv, OTHER_REGION, "python3.12", "app.handler",
                                                 {"app.py": PYTHON_SRC})
    assert messages == [
        messages[0],
        "init line from module scope\n",
        f"START RequestId: {rid1} Version: $LATEST\n",
        "invocation line 1\n",
        f"END RequestId: {rid1}\n",
        messages[5],
        f"START RequestId: {rid2} Version: $LATEST\n",
        "invocation line 2\n",
        f"END RequestId: {rid2}\n",
        messages[9],
    ], messages
    # The ARN names the function's region.
    assert init_start("python:3.12", OTHER_REGION).match(messages[0]), messages[0]
    assert report(rid1, cold=True).match(messages[5]), messages[5]
    assert report(rid2, cold=False).match(messages[9]), messages[9]
    assert tail == "".join(messages[1:6]), tail


def test_python_init_error_output_comes_before_start(srv):
    lam = boto_client(srv.endpoint, "lambda")
    logs = boto_client(srv.endpoint, "logs")
    name = unique("init-error")
    create(lam, name, "python3.12", "app.handler", {"app.py": PYTHON_INIT_ERROR_SRC})
    r, body, tail = invoke(lam, name, 1, tail=True)
    assert r["FunctionError"] == "Unhandled", r
    assert (body["errorType"], body["errorMessage"]) == ("RuntimeError", "init failed"), body
    rid = r["ResponseMetadata"]["RequestId"]
    messages = stream_messages(logs, name)
    assert len(messages) == 7, messages
    assert init_start("python:3.12", REGION).match(messages[0]), messages[0]
    assert messages[1] == "init line from module scope\n"
    # The runtime's report of the error (as Lambda's Python runtime words it), then the
    # invocation's lines, with nothing between START and END; no Init Duration.
    assert re.match(rf"^\[WARNING\]\t{ISO}\t\tLAMBDA_WARNING: Unhandled exception\. ", messages[2]), messages[2]
    assert messages[3].startswith("[ERROR] RuntimeError: init failed\nTraceback (most recent call last):\n"), messages[3]
    assert messages[4:6] == [f"START RequestId: {rid} Version: $LATEST\n", f"END RequestId: {rid}\n"], messages
    assert report(rid, cold=False).match(messages[6]), messages[6]
    # The tail begins with the init output, as AWS's does (the runtime's \r kept).
    assert tail.replace("\r", "\n") == "".join(messages[1:]), tail


CGROUP_AT_INIT_PYTHON = """
import os
AT_INIT = open('/proc/self/cgroup').read()
AWAIT_VAR = os.environ.get('_PORTICO_AWAIT_SANDBOX')
def handler(event, context):
    return {'atInit': AT_INIT, 'awaitVar': AWAIT_VAR}
"""


def test_python_code_runs_in_its_cgroups_from_its_first_line(srv):
    """The Python runtime client, like Node's, loads function code only once Portico has
    moved the process into its cgroups (test_isolation.py has the Node case)."""
    if "cgroups: off" in srv.log_path.read_text(errors="replace"):
        pytest.skip("no cgroups on this host")
    lam = boto_client(srv.endpoint, "lambda", region=REGION)
    name = unique("cg-init-py")
    create(lam, name, "python3.12", "app.handler", {"app.py": CGROUP_AT_INIT_PYTHON})
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in r
    assert_in_own_cgroups(json.loads(r["Payload"].read()))
