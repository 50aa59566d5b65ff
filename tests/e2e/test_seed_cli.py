"""The tutorial's CLI path (shared/seed/000_ab28f5332de62046.txt), verbatim but for
`--endpoint-url` (added by the `aws` fixture) and the real ApiId in place of
`a1b2c3d4e5`, with the real AWS CLI v1 and curl.

The steps run in order; each test picks up what the previous one created.
"""

import base64
import hashlib
import json
import re
import shutil
import subprocess
import time

import pytest

from conftest import ACCOUNT, REPO, code_sha256, curl

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:hello-api"

# Step 1: `zip function.zip index.mjs`, then the tutorial's create-function.
CREATE_FUNCTION = """aws lambda create-function \
--function-name hello-api \
--runtime nodejs22.x \
--architectures arm64 \
--handler index.handler \
--zip-file fileb://function.zip \
--role arn:aws:iam::111122223333:role/hello-api-role"""

# Step 2: quick create.
CREATE_API = """aws apigatewayv2 create-api \
--name hello-http-api \
--protocol-type HTTP \
--target arn:aws:lambda:us-east-1:111122223333:function:hello-api"""

ADD_PERMISSION = """aws lambda add-permission \
--function-name hello-api \
--statement-id apigw-invoke \
--action lambda:InvokeFunction \
--principal apigateway.amazonaws.com \
--source-arn "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5/*/*/hello\""""

UPDATE_CORS = """aws apigatewayv2 update-api \
--api-id a1b2c3d4e5 \
--cors-configuration AllowOrigins="https://app.example.com",AllowMethods="GET,POST,OPTIONS",AllowHeaders="content-type\""""

ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def state():
    return {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    # The tutorial's own step: `zip function.zip index.mjs` (Info-ZIP, installed by setup).
    d = tmp_path_factory.mktemp("hello-api")
    shutil.copy(REPO / "examples/hello-api/index.mjs", d / "index.mjs")
    subprocess.run(["zip", "function.zip", "index.mjs"], cwd=d, check=True, capture_output=True)
    return d


def ok(res):
    assert res.rc == 0, f"aws failed ({res.rc}): {res.err}"
    return res.out


def test_create_function(aws, workdir, state):
    out = ok(aws(CREATE_FUNCTION, cwd=workdir))
    zip_bytes = (workdir / "function.zip").read_bytes()
    # What the tutorial shows ...
    assert out["FunctionName"] == "hello-api"
    assert out["FunctionArn"] == ARN
    assert out["Runtime"] == "nodejs22.x"
    assert out["Handler"] == "index.handler"
    assert out["State"] == "Pending"
    # ... and the rest of AWS's answer.
    assert out["Role"] == f"arn:aws:iam::{ACCOUNT}:role/hello-api-role"
    assert out["Architectures"] == ["arm64"]
    assert out["CodeSha256"] == code_sha256(zip_bytes)
    assert out["CodeSize"] == len(zip_bytes)
    assert out["Version"] == "$LATEST"
    assert out["PackageType"] == "Zip"
    assert out["Timeout"] == 3 and out["MemorySize"] == 128
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", out["LastModified"]), out["LastModified"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", out["RevisionId"])
    state["zip"] = zip_bytes


def test_create_api_quick_create(aws, server, state):
    out = ok(aws(CREATE_API))
    api_id = out["ApiId"]
    assert re.fullmatch(r"[a-z0-9]{10}", api_id), api_id
    assert out["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{server.port}"
    assert out["Name"] == "hello-http-api"
    assert out["ProtocolType"] == "HTTP"
    assert out["RouteSelectionExpression"] == "$request.method $request.path"
    state["api_id"] = api_id
    # Quick create made the $default route, the Lambda proxy integration (2.0) and the
    # auto-deployed $default stage.
    routes = ok(aws("apigatewayv2", "get-routes", "--api-id", api_id))["Items"]
    assert [r["RouteKey"] for r in routes] == ["$default"]
    integrations = ok(aws("apigatewayv2", "get-integrations", "--api-id", api_id))["Items"]
    assert len(integrations) == 1
    i = integrations[0]
    assert i["IntegrationType"] == "AWS_PROXY"
    assert i["IntegrationUri"] == ARN
    assert i["PayloadFormatVersion"] == "2.0"
    assert routes[0]["Target"] == f"integrations/{i['IntegrationId']}"
    stages = ok(aws("apigatewayv2", "get-stages", "--api-id", api_id))["Items"]
    assert [(s["StageName"], s["AutoDeploy"]) for s in stages] == [("$default", True)]


def test_add_permission(aws, state):
    api_id = state["api_id"]
    out = ok(aws(ADD_PERMISSION.replace("a1b2c3d4e5", api_id)))
    statement = json.loads(out["Statement"])
    source_arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*/*/hello"
    assert statement["Sid"] == "apigw-invoke"
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == ARN
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": source_arn}}
    policy = json.loads(ok(aws("lambda", "get-policy", "--function-name", "hello-api"))["Policy"])
    assert "apigw-invoke" in [s["Sid"] for s in policy["Statement"]]


def test_curl_hello_dev(server, state):
    api_id = state["api_id"]
    for url in (server.host_url(api_id, "/hello?name=Dev"), server.path_url(api_id, "/hello?name=Dev")):
        r = curl(url)
        assert r.status == 200, (url, r.status, r.text)
        assert r.body == b'{"message":"Hello, Dev!"}', r.body
        assert r.headers.get("content-type") == "application/json", r.headers
        assert r.headers.get("apigw-requestid"), r.headers


def test_get_function_active(aws, state):
    deadline = time.monotonic() + 10
    while True:
        out = ok(aws("lambda", "get-function", "--function-name", "hello-api"))
        if out["Configuration"]["State"] != "Pending" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    cfg = out["Configuration"]
    assert cfg["State"] == "Active", cfg
    assert cfg["LastUpdateStatus"] == "Successful", cfg
    assert cfg["FunctionArn"] == ARN
    assert cfg["CodeSha256"] == code_sha256(state["zip"])
    # Code.Location downloads the package as it is, with no signing of one's own (as
    # AWS's presigned link does); a tampered link is refused.
    location = out["Code"]["Location"]
    got = curl(location)
    assert got.status == 200, (got.status, got.text)
    assert base64.b64encode(hashlib.sha256(got.body).digest()).decode() == cfg["CodeSha256"]
    assert got.body == state["zip"]
    tampered = curl(location.replace("X-Amz-Expires=600", "X-Amz-Expires=601"))
    assert tampered.status == 403, (tampered.status, tampered.text)


def test_sts_and_listing(aws, state):
    ident = ok(aws("sts", "get-caller-identity"))
    assert ident["Account"] == ACCOUNT
    assert ACCOUNT in ident["Arn"]
    names = [f["FunctionName"] for f in ok(aws("lambda", "list-functions"))["Functions"]]
    assert "hello-api" in names
    apis = ok(aws("apigatewayv2", "get-apis"))["Items"]
    assert state["api_id"] in [a["ApiId"] for a in apis]


def test_update_api_cors(aws, state):
    api_id = state["api_id"]
    out = ok(aws(UPDATE_CORS.replace("a1b2c3d4e5", api_id)))
    assert out["ApiId"] == api_id
    cors = out["CorsConfiguration"]
    assert cors["AllowOrigins"] == [ORIGIN]
    assert cors["AllowMethods"] == ["GET", "POST", "OPTIONS"]
    assert cors["AllowHeaders"] == ["content-type"]
    got = ok(aws("apigatewayv2", "get-api", "--api-id", api_id))
    assert got["CorsConfiguration"] == cors


def test_cors_preflight_answered_by_gateway(server, state):
    url = server.host_url(state["api_id"], "/hello?name=Dev")
    r = curl(url, method="OPTIONS", headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "content-type",
    })
    assert r.status in (200, 204), (r.status, r.text)
    assert r.headers.get("access-control-allow-origin") == ORIGIN, r.headers
    assert "GET" in r.headers.get("access-control-allow-methods", ""), r.headers
    assert "content-type" in r.headers.get("access-control-allow-headers", "").lower(), r.headers
    # The function never saw it: the $default route would have answered "Hello, world!".
    assert b"Hello" not in r.body


def test_cors_actual_request_and_disallowed_origin(server, state):
    url = server.host_url(state["api_id"], "/hello?name=Dev")
    r = curl(url, headers={"Origin": ORIGIN})
    assert r.status == 200
    assert r.body == b'{"message":"Hello, Dev!"}'
    assert r.headers.get("access-control-allow-origin") == ORIGIN, r.headers

    evil = "https://evil.example.com"
    r = curl(url, method="OPTIONS", headers={"Origin": evil, "Access-Control-Request-Method": "GET"})
    assert not any(k.startswith("access-control-") for k in r.headers), r.headers
    r = curl(url, headers={"Origin": evil})
    assert r.status == 200 and r.body == b'{"message":"Hello, Dev!"}'
    assert not any(k.startswith("access-control-") for k in r.headers), r.headers


def test_quick_create_with_route_key(aws, server, state):
    # `--route-key` makes quick create build that route instead of `$default`: only it answers.
    out = ok(aws(CREATE_API.replace("hello-http-api", "hello-routed") + " --route-key 'GET /hello'"))
    api_id = out["ApiId"]
    routes = ok(aws("apigatewayv2", "get-routes", "--api-id", api_id))["Items"]
    assert [r["RouteKey"] for r in routes] == ["GET /hello"]
    base = f"http://{api_id}.execute-api.localhost:{server.port}"
    r = curl(f"{base}/hello?name=Dev")
    assert (r.status, r.text) == (200, '{"message":"Hello, Dev!"}')
    r = curl(f"{base}/elsewhere")
    assert (r.status, r.text) == (404, '{"message":"Not Found"}')
    r = curl(f"{base}/hello", method="POST")
    assert r.status == 404
