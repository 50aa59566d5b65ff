"""Payload formats 1.0 and 2.0 end to end: one echo function behind one API with two
routes, `ANY /v1/{proxy+}` (PayloadFormatVersion 1.0) and `ANY /v2/{proxy+}` (2.0).

Each request row is sent through both routes with the real curl; the function answers
the event it got, and the row lists the event fields each format must show. Response
rows make the same function answer a canned response (`/respond/{kind}`) and check how
each format maps it.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ACCOUNT, CurlResponse, allow_api, create_function, unique

UA = "portico-e2e/1.0"
BINARY = bytes(range(256))

ECHO = """
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
// Canned answers for the response-mapping rows.
const RESPONSES = {
  cookies: { statusCode: 201, cookies: ["a=1; Path=/", "b=2; HttpOnly"], body: "cookies" },
  multi: {
    statusCode: 200,
    headers: { "x-one": "1", "x-both": "b" },
    multiValueHeaders: { "x-multi": ["m1", "m2"], "x-both": ["b", "c"], "set-cookie": ["s=1", "t=2"] },
    body: "multi",
  },
  binary: {
    statusCode: 200,
    headers: { "content-type": "application/octet-stream" },
    isBase64Encoded: true,
    body: BINARY.toString("base64"),
  },
  nostatus: { headers: { "x-a": "1" }, body: "no status" },
};
export const handler = async (event) => {
  const proxy = (event.pathParameters ?? {}).proxy ?? "";
  if (proxy.startsWith("respond/")) return RESPONSES[proxy.slice("respond/".length)];
  return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(event) };
};
"""

ABSENT = object()  # a member the event must not have (2.0 leaves empty parts out)


@pytest.fixture(scope="module")
def api(apigw, lam):
    """(api id, {"1.0": integration id, "2.0": ...}) with the two routes on `$default`."""
    name = unique("payload-echo")
    arn = create_function(lam, name, {"index.mjs": ECHO})["FunctionArn"]
    api_id = apigw.create_api(Name=unique("payloads"), ProtocolType="HTTP")["ApiId"]
    allow_api(lam, name, api_id)
    for version, prefix in (("1.0", "v1"), ("2.0", "v2")):
        iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn,
                                       PayloadFormatVersion=version)["IntegrationId"]
        got = apigw.get_integration(ApiId=api_id, IntegrationId=iid)
        assert got["PayloadFormatVersion"] == version, got
        apigw.create_route(ApiId=api_id, RouteKey=f"ANY /{prefix}/{{proxy+}}", Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return api_id


def send(url: str, method: str = "GET", headers: list[tuple[str, str]] = (), data: bytes | None = None,
         timeout: float = 35) -> CurlResponse:
    """The real curl, with repeated headers kept as sent (the shared helper takes a dict)."""
    with tempfile.TemporaryDirectory(prefix="portico-curl-") as d:
        hdr_file, body_file = Path(d) / "headers", Path(d) / "body"
        cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout), "-A", UA,
               "-D", str(hdr_file), "-o", str(body_file), "-w", "%{http_code}", "-X", method]
        for k, v in headers:
            cmd += ["-H", f"{k}: {v}"]
        if data is not None:
            (Path(d) / "data").write_bytes(data)
            cmd += ["--data-binary", f"@{Path(d) / 'data'}"]
        cmd.append(url)
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        assert p.returncode == 0, f"curl {url} failed ({p.returncode}): {p.stderr.decode()}"
        block = [b for b in hdr_file.read_bytes().decode("latin-1").split("\r\n\r\n") if b.strip()][-1]
        pairs = [(k.strip().lower(), v.strip()) for k, v in
                 (line.split(":", 1) for line in block.split("\r\n")[1:] if ":" in line)]
        merged: dict[str, str] = {}
        for k, v in pairs:
            merged[k] = f"{merged[k]}, {v}" if k in merged else v
        return CurlResponse(int(p.stdout.decode()), merged, body_file.read_bytes(), pairs)


def dig(event: dict, path: str):
    """`event["a"]["b"]` for `"a.b"`, or ABSENT."""
    node = event
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return ABSENT
        node = node[key]
    return node


@dataclass
class Row:
    name: str
    path: str  # after the /v1 or /v2 prefix, query included
    method: str = "GET"
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: bytes | None = None
    v1: dict = field(default_factory=dict)  # dotted path in the 1.0 event -> expected value
    v2: dict = field(default_factory=dict)


B64 = base64.b64encode(BINARY).decode()
JSON_BODY = '{"name": "Rex", "tags": ["a", "b"]}'

ROWS = [
    Row("nothing optional", "/items/42",
        v1={"queryStringParameters": None, "multiValueQueryStringParameters": None, "body": None,
            "isBase64Encoded": False, "pathParameters": {"proxy": "items/42"}, "stageVariables": None,
            "headers.cookie": ABSENT},
        v2={"rawQueryString": "", "queryStringParameters": ABSENT, "body": ABSENT, "cookies": ABSENT,
            "isBase64Encoded": False, "pathParameters": {"proxy": "items/42"}, "stageVariables": ABSENT}),
    Row("repeated headers", "/h", headers=[("X-Multi", "a"), ("X-Multi", "b"), ("X-List", "1,2")],
        # 1.0: the last value, and every value; never split on ",".
        v1={"headers.x-multi": "b", "multiValueHeaders.x-multi": ["a", "b"],
            "headers.x-list": "1,2", "multiValueHeaders.x-list": ["1,2"]},
        v2={"headers.x-multi": "a,b", "headers.x-list": "1,2", "multiValueHeaders": ABSENT}),
    Row("repeated query parameters", "/q?a=1&a=2&b=x+y&c=%2F&flag",
        v1={"queryStringParameters": {"a": "2", "b": "x y", "c": "/", "flag": ""},
            "multiValueQueryStringParameters": {"a": ["1", "2"], "b": ["x y"], "c": ["/"], "flag": [""]}},
        v2={"rawQueryString": "a=1&a=2&b=x+y&c=%2F&flag",
            "queryStringParameters": {"a": "1,2", "b": "x y", "c": "/", "flag": ""},
            "multiValueQueryStringParameters": ABSENT}),
    Row("cookies", "/c", headers=[("Cookie", "c1=v1; c2=v2")],
        v1={"headers.cookie": "c1=v1; c2=v2", "multiValueHeaders.cookie": ["c1=v1; c2=v2"], "cookies": ABSENT},
        v2={"cookies": ["c1=v1", "c2=v2"], "headers.cookie": ABSENT}),
    Row("binary body", "/upload", method="POST", headers=[("Content-Type", "application/octet-stream")],
        data=BINARY,
        v1={"isBase64Encoded": True, "body": B64, "headers.Content-Type": "application/octet-stream",
            "headers.Content-Length": "256"},
        v2={"isBase64Encoded": True, "body": B64, "headers.content-type": "application/octet-stream",
            "headers.content-length": "256"}),
    Row("JSON body", "/pets", method="POST", headers=[("Content-Type", "application/json")],
        data=JSON_BODY.encode(),
        v1={"isBase64Encoded": False, "body": JSON_BODY, "httpMethod": "POST", "requestContext.httpMethod": "POST"},
        v2={"isBase64Encoded": False, "body": JSON_BODY, "requestContext.http.method": "POST"}),
    Row("greedy path parameter", "/a/b%20c/d",
        v1={"pathParameters": {"proxy": "a/b c/d"}},
        v2={"pathParameters": {"proxy": "a/b c/d"}}),
    Row("the client's x-forwarded headers", "/f",
        headers=[("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "443")],
        v1={"headers.X-Forwarded-For": "203.0.113.9, 127.0.0.1", "headers.X-Forwarded-Proto": "http",
            "multiValueHeaders.X-Forwarded-For": ["203.0.113.9, 127.0.0.1"], "headers.x-forwarded-for": ABSENT},
        v2={"headers.x-forwarded-for": "203.0.113.9, 127.0.0.1", "headers.x-forwarded-proto": "http"}),
]

TIME = re.compile(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$")


def common(version: str, api_id: str, port: int, row: Row, request_id: str) -> dict:
    """What every event of a format shows for `row`."""
    path = f"/v{version[0]}{row.path.split('?')[0]}"
    domain = f"{api_id}.execute-api.localhost"
    if version == "1.0":
        return {
            "version": "1.0", "resource": "/v1/{proxy+}", "path": path, "httpMethod": row.method,
            "headers.Host": f"{domain}:{port}", "headers.User-Agent": UA, "multiValueHeaders.User-Agent": [UA],
            "headers.X-Forwarded-Port": str(port), "headers.X-Forwarded-Proto": "http",
            "requestContext.accountId": ACCOUNT, "requestContext.apiId": api_id,
            "requestContext.domainName": domain, "requestContext.domainPrefix": api_id,
            "requestContext.extendedRequestId": request_id, "requestContext.requestId": request_id,
            "requestContext.httpMethod": row.method, "requestContext.path": path,
            "requestContext.protocol": "HTTP/1.1", "requestContext.resourceId": "ANY /v1/{proxy+}",
            "requestContext.resourcePath": "/v1/{proxy+}", "requestContext.stage": "$default",
            "requestContext.identity.sourceIp": "127.0.0.1", "requestContext.identity.userAgent": UA,
            "requestContext.identity.userArn": None, "requestContext.identity.caller": None,
            "requestContext.authorizer": ABSENT,
        }
    return {
        "version": "2.0", "routeKey": "ANY /v2/{proxy+}", "rawPath": path,
        "headers.host": f"{domain}:{port}", "headers.user-agent": UA,
        "headers.x-forwarded-for": "127.0.0.1", "headers.x-forwarded-port": str(port),
        "headers.x-forwarded-proto": "http",
        "requestContext.accountId": ACCOUNT, "requestContext.apiId": api_id,
        "requestContext.domainName": domain, "requestContext.domainPrefix": api_id,
        "requestContext.requestId": request_id, "requestContext.routeKey": "ANY /v2/{proxy+}",
        "requestContext.stage": "$default", "requestContext.http.method": row.method,
        "requestContext.http.path": path, "requestContext.http.protocol": "HTTP/1.1",
        "requestContext.http.sourceIp": "127.0.0.1", "requestContext.http.userAgent": UA,
    }


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_event_fields(server, api, row, version):
    prefix = f"/v{version[0]}"
    before = time.time()
    r = send(server.host_url(api, prefix + row.path), row.method, row.headers, row.data)
    assert r.status == 200, (r.status, r.text)
    event = r.json()
    rid = r.headers["apigw-requestid"]
    want = common(version, api, server.port, row, rid)
    if "x-forwarded-for" in {k.lower() for k, _ in row.headers}:
        want.pop("headers.x-forwarded-for", None)  # the row says what it must be
    want.update(row.v1 if version == "1.0" else row.v2)
    got = {path: dig(event, path) for path in want}
    assert got == want, json.dumps(event, indent=1)
    # Time members: the documented format and the arrival time in milliseconds.
    stamp, epoch = (("requestTime", "requestTimeEpoch") if version == "1.0" else ("time", "timeEpoch"))
    assert TIME.match(event["requestContext"][stamp]), event["requestContext"][stamp]
    assert before - 5 <= event["requestContext"][epoch] / 1000 <= time.time() + 5
    if version == "1.0":
        # Every header has both shapes, the single one being the last value.
        assert event["headers"].keys() == event["multiValueHeaders"].keys()
        assert all(event["headers"][k] == vs[-1] for k, vs in event["multiValueHeaders"].items())


@dataclass
class ResponseRow:
    kind: str
    version: str
    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)  # name -> every value, in order ([] = none)
    body: bytes | None = None


RESPONSE_ROWS = [
    # 2.0: each cookie is one Set-Cookie; 1.0 has no `cookies` field.
    ResponseRow("cookies", "2.0", 201, {"set-cookie": ["a=1; Path=/", "b=2; HttpOnly"]}, b"cookies"),
    ResponseRow("cookies", "1.0", 201, {"set-cookie": []}, b"cookies"),
    # 1.0 merges headers and multiValueHeaders (a pair in both once); 2.0 has no multiValueHeaders.
    ResponseRow("multi", "1.0", 200, {"x-one": ["1"], "x-multi": ["m1", "m2"], "x-both": ["b", "c"],
                                      "set-cookie": ["s=1", "t=2"]}, b"multi"),
    ResponseRow("multi", "2.0", 200, {"x-one": ["1"], "x-multi": [], "x-both": ["b"], "set-cookie": []}, b"multi"),
    # A base64 body comes back byte for byte.
    ResponseRow("binary", "1.0", 200, {"content-type": ["application/octet-stream"]}, BINARY),
    ResponseRow("binary", "2.0", 200, {"content-type": ["application/octet-stream"]}, BINARY),
    # No statusCode: 1.0 infers nothing (502); 2.0 answers the JSON itself with 200.
    ResponseRow("nostatus", "1.0", 502, {"content-type": ["application/json"]}, b'{"message":"Internal Server Error"}'),
    ResponseRow("nostatus", "2.0", 200, {"content-type": ["application/json"], "x-a": []}),
]


@pytest.mark.parametrize("row", RESPONSE_ROWS, ids=[f"{r.kind}-{r.version}" for r in RESPONSE_ROWS])
def test_response_mapping(server, api, row):
    r = send(server.host_url(api, f"/v{row.version[0]}/respond/{row.kind}"))
    assert r.status == row.status, (r.status, r.text)
    for name, values in row.headers.items():
        assert [v for k, v in r.header_lines if k == name] == values, (name, r.header_lines)
    assert r.headers.get("apigw-requestid")
    if row.body is not None:
        assert r.body == row.body
    if row.kind == "nostatus" and row.version == "2.0":
        assert json.loads(r.body) == {"headers": {"x-a": "1"}, "body": "no status"}


def test_path_style_url_and_port(server, api):
    """The path-style URL reaches the same route; Host (and so the port) is the one used."""
    r = send(server.path_url(api, "/v1/p?x=1"), headers=[("X-Multi", "a"), ("X-Multi", "b")])
    assert r.status == 200, r.text
    event = r.json()
    assert event["path"] == "/v1/p" and event["queryStringParameters"] == {"x": "1"}
    assert event["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert event["headers"]["X-Forwarded-Port"] == str(server.port)
    assert event["multiValueHeaders"]["x-multi"] == ["a", "b"]
