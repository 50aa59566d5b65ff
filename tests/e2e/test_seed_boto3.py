"""The tutorial's flow through boto3, then the rest of the Lambda and API Gateway v2
operations Portico serves: invocation types, log tails, pagination, code and
configuration updates, policies, routes/integrations/stages, deletes."""

import base64
import json
import re
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT, HELLO_SRC, REGION, ROLE, allow_api, code_sha256, create_function, curl, error_of,
    function_arn, make_zip, unique, wait_active,
)

HELLO_BODY = b'{"message":"Hello, Dev!"}'

# Echoes what the function sees: its event, the Lambda context and environment.
ECHO_SRC = """
import http from "node:http";
export const handler = async (event, context) => {
  console.log("echo-log-line", context.awsRequestId);
  if (event && event.recorder) {
    await new Promise((resolve, reject) => {
      const req = http.request(event.recorder, { method: "POST" }, (res) => { res.resume(); res.on("end", resolve); });
      req.on("error", reject);
      req.end(JSON.stringify({ tag: event.tag, requestId: context.awsRequestId }));
    });
  }
  return {
    requestId: context.awsRequestId,
    functionName: context.functionName,
    memoryLimitInMB: String(context.memoryLimitInMB),
    invokedFunctionArn: context.invokedFunctionArn,
    remainingMs: context.getRemainingTimeInMillis(),
    env: {
      GREETING: process.env.GREETING ?? null,
      AWS_LAMBDA_FUNCTION_NAME: process.env.AWS_LAMBDA_FUNCTION_NAME,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      AWS_REGION: process.env.AWS_REGION,
    },
    event,
  };
};
"""


def version_src(v):
    return f"export const handler = async () => ({{ v: {v} }});\n"


def invoke_json(lam, name, payload=None, **kw):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kw)
    body = r["Payload"].read()
    return r, (json.loads(body) if body else None)


# --- the tutorial's flow ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hello(lam, apigw):
    name = unique("hello-boto3")
    zip_bytes = make_zip({"index.mjs": HELLO_SRC})
    created = lam.create_function(
        FunctionName=name, Runtime="nodejs22.x", Architectures=["arm64"], Handler="index.handler",
        Code={"ZipFile": zip_bytes}, Role=f"arn:aws:iam::{ACCOUNT}:role/hello-api-role",
    )
    api = apigw.create_api(Name="hello-http-api", ProtocolType="HTTP", Target=function_arn(name))
    perm = lam.add_permission(
        FunctionName=name, StatementId="apigw-invoke", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api['ApiId']}/*/*/hello",
    )
    return {"name": name, "zip": zip_bytes, "created": created, "api": api, "perm": perm}


def test_sts_caller_identity(client):
    ident = client("sts").get_caller_identity()
    assert ident["Account"] == ACCOUNT
    assert ident["Arn"].startswith(f"arn:aws:iam::{ACCOUNT}:")


def test_create_function_answer(hello):
    c = hello["created"]
    assert c["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert c["FunctionName"] == hello["name"]
    assert c["FunctionArn"] == function_arn(hello["name"])
    assert c["Runtime"] == "nodejs22.x" and c["Handler"] == "index.handler"
    assert c["State"] == "Pending"
    assert c["CodeSha256"] == code_sha256(hello["zip"])
    assert c["CodeSize"] == len(hello["zip"])
    assert c["Architectures"] == ["arm64"]
    assert c["Version"] == "$LATEST" and c["PackageType"] == "Zip"
    assert c["LoggingConfig"]["LogGroup"] == f"/aws/lambda/{hello['name']}"


def test_create_api_answer(hello, server):
    api = hello["api"]
    assert api["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert re.fullmatch(r"[a-z0-9]{10}", api["ApiId"])
    assert api["ApiEndpoint"] == f"http://{api['ApiId']}.execute-api.localhost:{server.port}"
    assert api["Name"] == "hello-http-api" and api["ProtocolType"] == "HTTP"
    assert api["ApiKeySelectionExpression"] == "$request.header.x-api-key"
    assert api["RouteSelectionExpression"] == "$request.method $request.path"


def test_add_permission_answer(hello):
    perm = hello["perm"]
    assert perm["ResponseMetadata"]["HTTPStatusCode"] == 201
    st = json.loads(perm["Statement"])
    assert st["Sid"] == "apigw-invoke"
    assert st["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert st["Resource"] == function_arn(hello["name"])
    assert st["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":{hello['api']['ApiId']}/*/*/hello")


def test_hello_url_and_active(hello, lam, server):
    api_id = hello["api"]["ApiId"]
    r = curl(server.host_url(api_id, "/hello?name=Dev"))
    assert (r.status, r.body) == (200, HELLO_BODY), r.text
    assert r.headers["content-type"] == "application/json"
    cfg = wait_active(lam, hello["name"])
    assert cfg["State"] == "Active"


def test_cors_via_boto3(hello, apigw, server):
    api_id = hello["api"]["ApiId"]
    out = apigw.update_api(ApiId=api_id, CorsConfiguration={
        "AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST", "OPTIONS"],
        "AllowHeaders": ["content-type"],
    })
    assert out["CorsConfiguration"]["AllowOrigins"] == ["https://app.example.com"]
    r = curl(server.host_url(api_id, "/hello"), method="OPTIONS", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
    assert r.headers.get("access-control-allow-origin") == "https://app.example.com", (r.status, r.headers)
    assert b"Hello" not in r.body


# --- invocation ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo(lam):
    name = unique("echo")
    create_function(lam, name, {"index.mjs": ECHO_SRC})
    return name


def test_invoke_request_response(lam, hello):
    r, out = invoke_json(lam, hello["name"], {"queryStringParameters": {"name": "Boto"}},
                         InvocationType="RequestResponse")
    assert r["StatusCode"] == 200
    assert r["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in r
    assert out == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"message":"Hello, Boto!"}',
    }


def test_invoke_context_and_environment(lam, echo):
    r, out = invoke_json(lam, echo, {"k": [1, 2, 3]})
    assert out["event"] == {"k": [1, 2, 3]}
    assert out["functionName"] == echo
    assert out["invokedFunctionArn"] == function_arn(echo)
    assert out["memoryLimitInMB"] == "128"
    assert 0 < out["remainingMs"] <= 3000
    assert out["env"]["AWS_LAMBDA_FUNCTION_NAME"] == echo
    assert out["env"]["AWS_REGION"] == REGION
    assert re.fullmatch(r"[0-9a-f-]{36}", out["requestId"]), out["requestId"]


def test_invoke_event_is_202_and_runs(lam, echo, recorder):
    tag = unique("event")
    r = lam.invoke(FunctionName=echo, InvocationType="Event",
                   Payload=json.dumps({"recorder": recorder.url, "tag": tag}).encode())
    assert r["StatusCode"] == 202
    assert r["Payload"].read() == b""
    ran = recorder.wait_for(tag, 1, timeout=10)
    assert ran, "the Event invocation never ran the function"
    assert ran[0]["requestId"] == r["ResponseMetadata"]["RequestId"]


def test_invoke_dry_run_is_204(lam, echo):
    r = lam.invoke(FunctionName=echo, InvocationType="DryRun", Payload=b"{}")
    assert r["StatusCode"] == 204
    assert r["Payload"].read() == b""


def test_invoke_log_tail(lam, echo):
    r, out = invoke_json(lam, echo, {"x": 1}, LogType="Tail")
    rid = out["requestId"]
    log = base64.b64decode(r["LogResult"]).decode()
    assert f"START RequestId: {rid} Version: $LATEST" in log, log
    assert f"END RequestId: {rid}" in log, log
    assert re.search(rf"REPORT RequestId: {rid}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
                     rf"Memory Size: 128 MB\tMax Memory Used: \d+ MB", log), log
    # console.log as the Node runtime writes it: time, request id, level, message.
    assert re.search(rf"\t{rid}\tINFO\techo-log-line {rid}", log), log


def test_invoke_request_id_header_is_the_invocation_id(lam, echo):
    # On AWS, x-amzn-RequestId of Invoke is the invocation's request id
    # (context.awsRequestId, the id on the START/END/REPORT lines).
    r, out = invoke_json(lam, echo, {})
    assert r["ResponseMetadata"]["RequestId"] == out["requestId"]


@pytest.mark.parametrize("runtime,major", [("nodejs22.x", "v22."), ("nodejs20.x", "v20.")])
def test_runtime_uses_its_node(lam, runtime, major):
    name = unique("ver")
    create_function(lam, name, {"index.mjs": "export const handler = async () => process.version;\n"},
                    runtime=runtime)
    version = invoke_json(lam, name)[1]
    assert version.startswith(major), (runtime, version)


def test_handler_styles(lam):
    cases = {
        # CommonJS, callback style
        "cjs": ({"index.js": "exports.handler = (e, ctx, cb) => cb(null, {style: 'cjs', n: e.n});"}, "index.handler"),
        # .js in a package with "type": "module"
        "esm-js": ({"package.json": '{"type": "module"}',
                    "index.js": "export const handler = async (e) => ({style: 'esm-js', n: e.n});"}, "index.handler"),
        # handler in a sub-directory, module importing a sibling
        "nested": ({"src/app.mjs": "import {n} from './lib.mjs'; export const run = async (e) => ({style: 'nested', n: e.n + n});",
                    "src/lib.mjs": "export const n = 0;"}, "src/app.run"),
    }
    for style, (files, handler) in cases.items():
        name = unique(style)
        create_function(lam, name, files, handler=handler)
        r, out = invoke_json(lam, name, {"n": 7})
        assert "FunctionError" not in r, (style, out)
        assert out == {"style": style, "n": 7}, out


# --- listing, updates ----------------------------------------------------------------------


def test_list_functions_pagination(lam):
    prefix = unique("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        lam.create_function(FunctionName=n, Runtime="nodejs22.x", Role=ROLE, Handler="index.handler",
                            Code={"ZipFile": make_zip({"index.mjs": version_src(1)})})
    everything = [f["FunctionName"] for f in lam.list_functions(MaxItems=10000)["Functions"]]
    assert set(names) <= set(everything)

    seen, marker, pages = [], None, 0
    while True:
        kw = {"MaxItems": 2} | ({"Marker": marker} if marker else {})
        page = lam.list_functions(**kw)
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        pages += 1
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 1000
    assert len(seen) == len(set(seen)), "a function was listed twice"
    assert sorted(seen) == sorted(everything)
    assert pages >= 3

    # boto3's own paginator follows NextMarker the same way.
    paged = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 2}) for f in p["Functions"]]
    assert sorted(paged) == sorted(everything)


def test_update_function_code(lam):
    name = unique("code")
    v1, v2 = make_zip({"index.mjs": version_src(1)}), make_zip({"index.mjs": version_src(2)})
    created = lam.create_function(FunctionName=name, Runtime="nodejs22.x", Role=ROLE,
                                  Handler="index.handler", Code={"ZipFile": v1})
    wait_active(lam, name)
    assert invoke_json(lam, name)[1] == {"v": 1}
    updated = lam.update_function_code(FunctionName=name, ZipFile=v2)
    assert updated["CodeSha256"] == code_sha256(v2) != created["CodeSha256"]
    assert updated["CodeSize"] == len(v2)
    assert updated["RevisionId"] != created["RevisionId"]
    cfg = wait_active(lam, name)
    assert cfg["CodeSha256"] == code_sha256(v2)
    # The warm environment of v1 must not answer any more.
    assert invoke_json(lam, name)[1] == {"v": 2}


def test_update_function_configuration(lam, echo):
    before = lam.get_function_configuration(FunctionName=echo)
    out = lam.update_function_configuration(
        FunctionName=echo, Timeout=10, MemorySize=256, Description="updated by e2e",
        Environment={"Variables": {"GREETING": "hi"}},
    )
    assert out["Timeout"] == 10 and out["MemorySize"] == 256
    assert out["Description"] == "updated by e2e"
    assert out["Environment"]["Variables"] == {"GREETING": "hi"}
    assert out["RevisionId"] != before["RevisionId"]
    wait_active(lam, echo)
    cfg = lam.get_function_configuration(FunctionName=echo)
    assert (cfg["Timeout"], cfg["MemorySize"], cfg["Description"]) == (10, 256, "updated by e2e")
    assert cfg["Environment"]["Variables"] == {"GREETING": "hi"}
    _, seen = invoke_json(lam, echo, {})
    assert seen["env"]["GREETING"] == "hi"
    assert seen["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert seen["memoryLimitInMB"] == "256"
    assert 3000 < seen["remainingMs"] <= 10000


def test_update_function_configuration_moves_a_warm_function_to_a_new_handler_and_runtime(lam):
    name = unique("rehandle")
    src = ("export const first = async () => ({ handler: 'first', node: process.version });\n"
           "export const second = async () => ({ handler: 'second', node: process.version });\n")
    create_function(lam, name, {"index.mjs": src}, handler="index.first")
    _, warm = invoke_json(lam, name)
    assert warm["handler"] == "first" and warm["node"].startswith("v22."), warm
    out = lam.update_function_configuration(FunctionName=name, Handler="index.second", Runtime="nodejs20.x")
    # As on Lambda, the update answers InProgress and settles once checked.
    assert (out["Handler"], out["Runtime"], out["LastUpdateStatus"]) == ("index.second", "nodejs20.x", "InProgress")
    cfg = wait_active(lam, name)
    assert (cfg["Handler"], cfg["Runtime"]) == ("index.second", "nodejs20.x"), cfg
    _, after = invoke_json(lam, name)
    assert after["handler"] == "second" and after["node"].startswith("v20."), after


def test_policy_get_and_remove(lam, hello):
    name = hello["name"]
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert "apigw-invoke" in sids
    lam.add_permission(FunctionName=name, StatementId="extra", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=name, StatementId="extra", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com")
    assert error_of(e) == ("ResourceConflictException", 409)
    r = lam.remove_permission(FunctionName=name, StatementId="extra")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    sids = [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]]
    assert "extra" not in sids and "apigw-invoke" in sids
    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName=name, StatementId="extra")
    assert error_of(e) == ("ResourceNotFoundException", 404)


# --- routes, integrations, stages ----------------------------------------------------------


def test_routes_integrations_stages(lam, apigw, echo, server):
    api = apigw.create_api(Name=unique("manual"), ProtocolType="HTTP")
    api_id = api["ApiId"]
    integ = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                     IntegrationUri=function_arn(echo), PayloadFormatVersion="2.0")
    assert integ["ResponseMetadata"]["HTTPStatusCode"] == 201
    iid = integ["IntegrationId"]
    assert integ["IntegrationType"] == "AWS_PROXY" and integ["PayloadFormatVersion"] == "2.0"
    assert integ["TimeoutInMillis"] == 30000
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /hello", Target=f"integrations/{iid}")
    assert route["ResponseMetadata"]["HTTPStatusCode"] == 201
    rid = route["RouteId"]
    assert route["RouteKey"] == "GET /hello" and route["Target"] == f"integrations/{iid}"
    stage = apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    assert stage["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True

    # Without a resource-policy statement API Gateway may not invoke the function: 500.
    r = curl(server.host_url(api_id, "/hello"))
    assert (r.status, r.body) == (500, b'{"message":"Internal Server Error"}'), r.text
    allow_api(lam, echo, api_id)
    r = curl(server.host_url(api_id, "/hello?a=1&a=2&b=x"))
    assert r.status == 200, r.text
    ev = r.json()["event"]
    assert ev["version"] == "2.0" and ev["routeKey"] == "GET /hello" and ev["rawPath"] == "/hello"
    assert ev["rawQueryString"] == "a=1&a=2&b=x"
    assert ev["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert ev["requestContext"]["apiId"] == api_id
    assert ev["requestContext"]["accountId"] == ACCOUNT
    assert ev["requestContext"]["stage"] == "$default"
    assert ev["requestContext"]["http"]["method"] == "GET"
    assert ev["isBase64Encoded"] is False
    assert "stageVariables" not in ev

    # get / list
    assert apigw.get_route(ApiId=api_id, RouteId=rid)["RouteKey"] == "GET /hello"
    assert [x["RouteId"] for x in apigw.get_routes(ApiId=api_id)["Items"]] == [rid]
    assert apigw.get_integration(ApiId=api_id, IntegrationId=iid)["IntegrationUri"] == function_arn(echo)
    assert [x["IntegrationId"] for x in apigw.get_integrations(ApiId=api_id)["Items"]] == [iid]
    assert apigw.get_stage(ApiId=api_id, StageName="$default")["AutoDeploy"] is True
    assert [x["StageName"] for x in apigw.get_stages(ApiId=api_id)["Items"]] == ["$default"]

    # update
    assert apigw.update_route(ApiId=api_id, RouteId=rid, RouteKey="GET /hi")["RouteKey"] == "GET /hi"
    assert apigw.get_route(ApiId=api_id, RouteId=rid)["RouteKey"] == "GET /hi"
    assert curl(server.host_url(api_id, "/hello")).status == 404
    r = curl(server.host_url(api_id, "/hi"))
    assert r.status == 200 and r.json()["event"]["routeKey"] == "GET /hi", r.text
    assert apigw.update_integration(ApiId=api_id, IntegrationId=iid, TimeoutInMillis=5000)["TimeoutInMillis"] == 5000
    assert apigw.get_integration(ApiId=api_id, IntegrationId=iid)["TimeoutInMillis"] == 5000
    st = apigw.update_stage(ApiId=api_id, StageName="$default", Description="the default",
                            StageVariables={"color": "blue"})
    assert st["Description"] == "the default" and st["StageVariables"] == {"color": "blue"}
    assert apigw.get_stage(ApiId=api_id, StageName="$default")["StageVariables"] == {"color": "blue"}
    r = curl(server.path_url(api_id, "/hi"))
    assert r.status == 200 and r.json()["event"]["stageVariables"] == {"color": "blue"}, r.text

    # a named stage is served under its name
    dev = apigw.create_stage(ApiId=api_id, StageName="dev", AutoDeploy=True)
    assert dev["StageName"] == "dev"
    r = curl(server.host_url(api_id, "/dev/hi"))
    assert r.status == 200, r.text
    assert r.json()["event"]["requestContext"]["stage"] == "dev"
    assert sorted(x["StageName"] for x in apigw.get_stages(ApiId=api_id)["Items"]) == ["$default", "dev"]

    # delete
    assert apigw.delete_route(ApiId=api_id, RouteId=rid)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        apigw.get_route(ApiId=api_id, RouteId=rid)
    assert error_of(e) == ("NotFoundException", 404)
    r = curl(server.host_url(api_id, "/hi"))
    assert (r.status, r.body) == (404, b'{"message":"Not Found"}')
    assert apigw.delete_integration(ApiId=api_id, IntegrationId=iid)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        apigw.get_integration(ApiId=api_id, IntegrationId=iid)
    assert error_of(e) == ("NotFoundException", 404)
    assert apigw.delete_stage(ApiId=api_id, StageName="dev")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        apigw.get_stage(ApiId=api_id, StageName="dev")
    assert error_of(e) == ("NotFoundException", 404)
    assert apigw.get_routes(ApiId=api_id)["Items"] == []
    assert apigw.get_integrations(ApiId=api_id)["Items"] == []


# --- deletes ---------------------------------------------------------------------------------


def test_delete_api_then_url_404s(lam, apigw, server):
    name = unique("del-api")
    create_function(lam, name, {"index.mjs": HELLO_SRC})
    api_id = apigw.create_api(Name="to-delete", ProtocolType="HTTP", Target=function_arn(name))["ApiId"]
    allow_api(lam, name, api_id)
    assert curl(server.host_url(api_id, "/hello?name=Dev")).body == HELLO_BODY
    assert api_id in [a["ApiId"] for a in apigw.get_apis()["Items"]]
    r = apigw.delete_api(ApiId=api_id)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    for url in (server.host_url(api_id, "/hello?name=Dev"), server.path_url(api_id, "/hello")):
        r = curl(url)
        assert (r.status, r.body) == (404, b'{"message":"Not Found"}'), (url, r.status, r.text)
    with pytest.raises(ClientError) as e:
        apigw.get_api(ApiId=api_id)
    assert error_of(e) == ("NotFoundException", 404)
    assert api_id not in [a["ApiId"] for a in apigw.get_apis()["Items"]]


def test_delete_function(lam):
    name = unique("del-fn")
    create_function(lam, name, {"index.mjs": version_src(1)})
    assert invoke_json(lam, name)[1] == {"v": 1}
    r = lam.delete_function(FunctionName=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert error_of(e) == ("ResourceNotFoundException", 404)
    assert name in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    assert name not in [f["FunctionName"] for f in lam.list_functions(MaxItems=10000)["Functions"]]
