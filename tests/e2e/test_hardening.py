"""The public listener against hostile or broken clients (crates/portico/src/front.rs):

- a request head must arrive within --client-timeout (slowloris is cut off) while other
  clients are served;
- a body must keep arriving (no pause longer than the timeout, at least 1 KiB/s on
  average after it): a slow one gets 408 and the connection closes;
- a control-plane call that is unsigned or signed with an unknown key is refused from its
  head, before its body is read: a 60 MB upload gets its 403 at once;
- a request head over 16 KiB (or over 100 headers) gets 431 and the server keeps serving;
- a control-plane document nested deeper than 64 levels is refused with the service's
  400 (Lambda `InvalidRequestContentException`, API Gateway `BadRequestException`,
  CloudWatch Logs `SerializationException`), even under a member no operation reads;
- at most --max-connections are served at once: past it new clients wait (they are not
  refused), and idle connections are ended by the client timeout; 500 idle connections
  under the default cap do not keep a new client waiting.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
import time

import pytest

from conftest import (
    AKID, HELLO_SRC, ROLE, SECRET, Server, boto_client, make_zip, sign_headers, signed_curl, stop_and_check, unique,
)

TIMEOUT = 2.0  # --client-timeout of the strict server


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    base = tmp_path_factory.mktemp("strict")
    s = Server(base / "data", base / "portico.log",
               extra_args=("--client-timeout", str(TIMEOUT), "--max-connections", "20")).start()
    yield s
    try:
        stop_and_check(s)
    finally:
        s.kill()


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def head_bytes(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case) and body of one HTTP/1.1 response (Content-Length
    framed, or up to the close). A reset after the response is read is not an error."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except ConnectionResetError:
        if not data:
            raise
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def serves(server) -> bool:
    r = signed_curl(server.endpoint, "/2015-03-31/functions/", "lambda", timeout=10)
    return r.status == 200


# --- slow clients ------------------------------------------------------------------------


def test_slowloris_is_cut_off_while_others_are_served(strict):
    sock = connect(strict)
    head = head_bytes("GET", "/2015-03-31/functions/", {"Host": f"127.0.0.1:{strict.port}", "X-Slow": "a" * 100})
    cut_after: list[float] = []

    def trickle():
        t0 = time.monotonic()
        for b in head[:-1]:
            try:
                sock.send(bytes([b]))
            except OSError:
                break
            readable, _, _ = select.select([sock], [], [], 1.0)  # a byte a second
            if readable:
                try:
                    if not sock.recv(1):
                        break
                except OSError:
                    break
        cut_after.append(time.monotonic() - t0)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    served = 0
    deadline = time.monotonic() + TIMEOUT + 3
    while t.is_alive() and time.monotonic() < deadline:
        assert serves(strict)
        served += 1
        time.sleep(0.2)
    t.join(5)
    sock.close()
    assert cut_after, "the slow client was never cut off"
    assert TIMEOUT - 0.5 <= cut_after[0] <= TIMEOUT + 2.5, cut_after
    assert served >= 3
    assert serves(strict)


def test_a_slow_body_gets_408(strict):
    body = b"{" + b" " * 1998 + b"}"
    url = f"{strict.endpoint}/2015-03-31/functions"
    headers = sign_headers(url, "lambda", "POST", {"Content-Type": "application/json"}, body, strict.credentials)
    headers.update({"Host": f"127.0.0.1:{strict.port}", "Content-Length": str(len(body))})
    sock = connect(strict)
    sock.sendall(head_bytes("POST", "/2015-03-31/functions", headers))
    t0 = time.monotonic()
    answered: list[tuple[int, dict, bytes]] = []
    reader = threading.Thread(target=lambda: answered.append(read_response(sock, 15)), daemon=True)
    reader.start()
    for b in body:  # two bytes a second: no pause is too long, but the average is
        if answered or not reader.is_alive():
            break
        try:
            sock.send(bytes([b]))
        except OSError:
            break
        time.sleep(0.5)
    reader.join(15)
    took = time.monotonic() - t0
    sock.close()
    assert answered, "no answer to a slow body"
    status, hdrs, text = answered[0]
    assert status == 408, text
    assert hdrs.get("x-amzn-errortype") == "RequestTimeoutException"
    assert hdrs.get("connection") == "close"
    assert TIMEOUT - 0.5 <= took <= TIMEOUT + 3, took
    assert serves(strict)


# --- early refusal of large unsigned uploads ------------------------------------------------


@pytest.mark.parametrize("signed", [True, False], ids=["unknown-key", "unsigned"])
def test_a_large_upload_from_an_unknown_caller_is_refused_unread(server, signed):
    url = f"{server.endpoint}/2015-03-31/functions"
    headers = {"Content-Type": "application/json"}
    if signed:
        headers = sign_headers(url, "lambda", "POST", headers, b"{}", (AKID, SECRET))
    headers.update({"Host": f"127.0.0.1:{server.port}", "Content-Length": str(60 * 1024 * 1024)})
    sock = connect(server)
    sock.sendall(head_bytes("POST", "/2015-03-31/functions", headers))
    t0 = time.monotonic()

    def upload():
        # 1 MB of the announced 60 MB; the server may stop reading (or reset) at any time.
        try:
            sock.sendall(b" " * (1024 * 1024))
        except OSError:
            pass

    threading.Thread(target=upload, daemon=True).start()
    status, hdrs, body = read_response(sock, 10)
    took = time.monotonic() - t0
    sock.close()
    assert status == 403, body
    expected = "UnrecognizedClientException" if signed else "MissingAuthenticationTokenException"
    assert hdrs.get("x-amzn-errortype") == expected, (hdrs, body)
    assert hdrs.get("connection") == "close"
    # Answered with 59 MB still unsent: the body was never waited for.
    assert took < 3, took
    assert serves(server)


def test_a_known_key_may_still_send_a_large_body(server):
    # The early check lets a valid key through to the body (here a JSON error on garbage).
    body = b"x" * (2 * 1024 * 1024)
    r = signed_curl(server.endpoint, "/2015-03-31/functions", "lambda", "POST",
                    {"Content-Type": "application/json"}, body)
    assert r.status == 400, r.text


# --- deep JSON ------------------------------------------------------------------------------

DEEP = "[" * 100 + "]" * 100  # 100 nested arrays: past Portico's 64, within serde's own 128


def deep_in(doc: dict, member: str) -> str:
    """`doc` as JSON with `member` set to 100 nested arrays."""
    return json.dumps({**doc, member: "@DEEP@"}).replace('"@DEEP@"', DEEP)


def test_deeply_nested_json_is_refused_and_creates_nothing(server):
    lam = boto_client(server.endpoint, "lambda")
    apigw = boto_client(server.endpoint, "apigatewayv2")
    logs = boto_client(server.endpoint, "logs")
    # API Gateway CreateApi: in the place of `name`, and under a member no operation
    # reads (serde would skip that one: only the depth limit refuses it).
    name = unique("deep")
    for member in ("name", "portico-unknown"):
        body = deep_in({"name": name, "protocolType": "HTTP"}, member)
        r = signed_curl(server.endpoint, "/v2/apis", "apigateway", "POST", {"Content-Type": "application/json"}, body)
        assert (r.status, r.headers.get("x-amzn-errortype")) == (400, "BadRequestException"), r.text
        assert "JSON nesting deeper than 64 levels" in r.json()["message"], r.text
    assert name not in [a["Name"] for a in apigw.get_apis()["Items"]]
    # Lambda CreateFunction: in the place of `Description`, and under an unknown member.
    fname = unique("deep")
    doc = {"FunctionName": fname, "Runtime": "nodejs22.x", "Role": ROLE, "Handler": "index.handler",
           "Code": {"ZipFile": base64.b64encode(make_zip({"index.mjs": HELLO_SRC})).decode()}}
    for member in ("Description", "PorticoUnknown"):
        r = signed_curl(server.endpoint, "/2015-03-31/functions", "lambda", "POST",
                        {"Content-Type": "application/json"}, deep_in(doc, member))
        assert (r.status, r.headers.get("x-amzn-errortype")) == (400, "InvalidRequestContentException"), r.text
        assert r.json()["Type"] == "User" and "JSON nesting deeper than 64 levels" in r.json()["message"], r.text
    assert fname not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    # CloudWatch Logs (JSON 1.1) CreateLogGroup and DescribeLogGroups.
    group = f"/portico/deep/{unique('g')}"
    for target, member in (("CreateLogGroup", "logGroupName"), ("CreateLogGroup", "portico-unknown"),
                           ("DescribeLogGroups", "portico-unknown")):
        r = signed_curl(server.endpoint, "/", "logs", "POST",
                        {"X-Amz-Target": f"Logs_20140328.{target}", "Content-Type": "application/x-amz-json-1.1"},
                        deep_in({"logGroupName": group} if target == "CreateLogGroup" else {}, member))
        assert (r.status, r.json()["__type"]) == (400, "SerializationException"), (target, member, r.text)
        assert "JSON nesting deeper than 64 levels" in r.json()["message"], r.text
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    # 64 levels are fine, and the server still serves.
    at_limit = json.dumps({"name": name, "protocolType": "HTTP"})[:-1] + ', "x": ' + "[" * 63 + "]" * 63 + "}"
    r = signed_curl(server.endpoint, "/v2/apis", "apigateway", "POST", {"Content-Type": "application/json"}, at_limit)
    assert r.status == 201, r.text
    apigw.delete_api(ApiId=r.json()["apiId"])
    assert serves(server)


# --- oversized heads --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["one-large-header", "many-headers", "long-request-line"])
def test_an_oversized_head_gets_431_and_the_server_keeps_serving(server, kind):
    headers = {"Host": f"127.0.0.1:{server.port}"}
    path = "/2015-03-31/functions/"
    if kind == "one-large-header":
        headers["X-Filler"] = "a" * (20 * 1024)
    elif kind == "many-headers":
        headers.update({f"X-H{i}": "v" for i in range(150)})
    else:
        path += "?q=" + "a" * (20 * 1024)
    sock = connect(server)
    sock.sendall(head_bytes("GET", path, headers))
    status, _, _ = read_response(sock, 10)
    assert status == 431, status
    assert closed_by_server(sock, 5)
    sock.close()
    assert serves(server)


# --- connections ---------------------------------------------------------------------------------


def test_500_idle_connections_do_not_stop_a_new_client(server):
    idle = [connect(server) for _ in range(500)]
    try:
        t0 = time.monotonic()
        lam = boto_client(server.endpoint, "lambda")
        lam.list_functions()
        assert time.monotonic() - t0 < 5
        assert serves(server)
    finally:
        for s in idle:
            s.close()


def test_past_the_connection_cap_clients_wait_for_a_slot(strict):
    # 20 connections that send nothing fill the strict server's cap...
    idle = [connect(strict) for _ in range(20)]
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        # ...so a new client is accepted by the kernel but served only once the client
        # timeout has ended idle ones: it waits, it is not refused.
        assert serves(strict)
        took = time.monotonic() - t0
        assert TIMEOUT * 0.5 <= took <= TIMEOUT + 4, took
        assert all(closed_by_server(s, 3) for s in idle)
    finally:
        for s in idle:
            s.close()
    assert "new ones wait until one ends" in strict.log_path.read_text(errors="replace")


def test_a_client_that_stops_reading_is_cut_off(tmp_path):
    # Two clients ask for a 5 MB answer and never read it: they fill a server allowing two
    # connections. Once a write has waited the client timeout they are cut off, and a new
    # client is served.
    from conftest import create_function, unique

    s = Server(tmp_path / "data", tmp_path / "portico.log",
               extra_args=("--client-timeout", str(TIMEOUT), "--max-connections", "2")).start()
    try:
        lam, apigw = boto_client(s.endpoint, "lambda"), boto_client(s.endpoint, "apigatewayv2")
        big = 'export const handler = async () => ({ statusCode: 200, body: "x".repeat(5 * 1024 * 1024) });'
        fn = create_function(lam, unique("big"), {"index.mjs": big})
        api_id = apigw.create_api(Name=unique("big"), ProtocolType="HTTP", Target=fn["FunctionArn"])["ApiId"]
        stalled = []
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", s.port))
            sock.sendall(head_bytes("GET", f"/execute-api/{api_id}/big", {"Host": "127.0.0.1"}))
            stalled.append(sock)
        try:
            time.sleep(0.5)
            t0 = time.monotonic()
            assert serves(s), "a new client was never served while two clients stalled"
            assert time.monotonic() - t0 <= TIMEOUT + 8
        finally:
            for sock in stalled:
                sock.close()
    finally:
        stop_and_check(s)
