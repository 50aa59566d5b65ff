"""How function results and failures come out over HTTP and through direct Invoke."""

import json
import time

import pytest

from conftest import allow_api, create_function, curl, function_arn, unique

INTERNAL = b'{"message":"Internal Server Error"}'

FUNCTIONS = {
    # The seed's classic mistake: body is an object, not a string -> 502.
    "raw": 'export const handler = async () => ({ statusCode: 200, body: { a: 1 } });\n',
    # An unhandled error -> 500 over HTTP, FunctionError Unhandled on Invoke.
    "throw": 'export const handler = async () => { throw new TypeError("bad thing happened"); };\n',
    # Payload 2.0 inference: no statusCode -> 200 application/json with the JSON.
    "plain": 'export const handler = async () => ({ hello: "world", n: 1, list: [true, null] });\n',
    # A CommonJS callback-style handler failing through the callback.
    "cb": 'exports.handler = (event, context, callback) => { callback(new Error("callback failure")); };\n',
}


@pytest.fixture(scope="module")
def setup(lam, apigw):
    names = {}
    for key, src in FUNCTIONS.items():
        name = unique(f"err-{key}")
        filename = "index.js" if key == "cb" else "index.mjs"
        create_function(lam, name, {filename: src})
        names[key] = name
    api_id = apigw.create_api(Name=unique("errors"), ProtocolType="HTTP")["ApiId"]
    for key, name in names.items():
        iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                       IntegrationUri=function_arn(name),
                                       PayloadFormatVersion="2.0")["IntegrationId"]
        apigw.create_route(ApiId=api_id, RouteKey=f"GET /{key}", Target=f"integrations/{iid}")
        allow_api(lam, name, api_id)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return {"api_id": api_id, "names": names}


def test_raw_object_body_is_502(setup, server):
    r = curl(server.host_url(setup["api_id"], "/raw"))
    assert r.status == 502, (r.status, r.text)
    assert r.body == INTERNAL
    assert r.headers.get("content-type") == "application/json"
    assert r.headers.get("apigw-requestid")
    # The server's log says exactly what was wrong, naming the function.
    log = [l for l in server.log_path.read_text(errors="replace").splitlines() if setup["names"]["raw"] in l]
    assert any("502" in l and "body" in l for l in log), log


def test_throwing_function_is_500(setup, server):
    for key in ("throw", "cb"):
        r = curl(server.host_url(setup["api_id"], f"/{key}"))
        assert (r.status, r.body) == (500, INTERNAL), (key, r.status, r.text)
        assert r.headers.get("content-type") == "application/json"


def test_invoke_throwing_function_unhandled(lam, setup):
    r = lam.invoke(FunctionName=setup["names"]["throw"], Payload=b"{}")
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    err = json.loads(r["Payload"].read())
    assert err["errorType"] == "TypeError", err
    assert err["errorMessage"] == "bad thing happened", err
    # The Node.js runtime names the stack `trace` (Python's names it `stackTrace`).
    trace = err["trace"]
    assert isinstance(trace, list) and trace, err
    assert any("TypeError: bad thing happened" in line for line in trace), trace


def test_invoke_callback_error_unhandled(lam, setup):
    r = lam.invoke(FunctionName=setup["names"]["cb"], Payload=b"{}")
    assert r["FunctionError"] == "Unhandled"
    err = json.loads(r["Payload"].read())
    assert err["errorType"] == "Error" and err["errorMessage"] == "callback failure", err
    assert isinstance(err["trace"], list), err


def test_plain_object_is_inferred_200_json(setup, server):
    r = curl(server.host_url(setup["api_id"], "/plain"))
    assert r.status == 200, r.text
    assert r.headers.get("content-type") == "application/json"
    assert r.json() == {"hello": "world", "n": 1, "list": [True, None]}


def test_no_route_is_404(setup, server):
    for url in (server.host_url(setup["api_id"], "/nope"),
                server.path_url(setup["api_id"], "/plain/extra"),
                server.host_url(setup["api_id"], "/raw?x=1").replace("/raw", "/RAW")):
        r = curl(url)
        assert (r.status, r.body) == (404, b'{"message":"Not Found"}'), (url, r.status, r.text)
    # A method with no route.
    r = curl(server.host_url(setup["api_id"], "/plain"), method="POST", data="{}")
    assert (r.status, r.body) == (404, b'{"message":"Not Found"}'), r.text


def test_unknown_api_is_404(server):
    for url in (server.host_url("zzzzzzzzzz", "/hello"), server.path_url("zzzzzzzzzz", "/hello")):
        r = curl(url)
        assert (r.status, r.body) == (404, b'{"message":"Not Found"}'), (url, r.status, r.text)


def invoke_error(lam, name, payload=b"{}"):
    r = lam.invoke(FunctionName=name, Payload=payload)
    assert r["StatusCode"] == 200
    assert r.get("FunctionError") == "Unhandled", r
    return json.loads(r["Payload"].read())


@pytest.mark.parametrize("handler,files,error_type", [
    ("index.missing", {"index.mjs": "export const other = async () => 1;\n"}, "Runtime.HandlerNotFound"),
    ("nofile.handler", {"index.mjs": "export const handler = async () => 1;\n"}, "Runtime.ImportModuleError"),
    ("index.handler", {"index.mjs": "export const handler = async () => {{{ ;\n"}, "Runtime.UserCodeSyntaxError"),
])
def test_runtime_errors_as_aws_names_them(lam, handler, files, error_type):
    name = unique("rt-err")
    create_function(lam, name, files, handler=handler)
    err = invoke_error(lam, name)
    assert err["errorType"] == error_type, err
    assert err["errorMessage"], err
    # The environment is not wedged: a second invoke answers the same way.
    assert invoke_error(lam, name)["errorType"] == error_type


def test_timeout(lam):
    name = unique("slow")
    create_function(lam, name, {"index.mjs": "export const handler = () => new Promise(r => setTimeout(() => r(1), 5000));\n"},
                    Timeout=1)
    t0 = time.monotonic()
    err = invoke_error(lam, name)
    took = time.monotonic() - t0
    assert "Task timed out after 1.00 seconds" in err["errorMessage"], err
    assert took < 4, took
