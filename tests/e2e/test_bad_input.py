"""Bad input gets AWS's error type and status, writes nothing, and the server keeps
serving. Raw requests are SigV4-signed with the server's key, as a real client's are."""

import json
import os

import pytest
from botocore.exceptions import ClientError

from conftest import (
    HELLO_SRC, ROLE, allow_api, create_function, curl, error_of, function_arn, make_zip, signed_curl, unique,
)

JSON = {"Content-Type": "application/json"}


def error_type(r):
    # AWS may suffix the type with ":http://internal.amazon.com/..."; the code comes first.
    return r.headers.get("x-amzn-errortype", "").split(":")[0]


def create(lam, name, zip_bytes, runtime="nodejs22.x"):
    return lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="index.handler",
                               Code={"ZipFile": zip_bytes})


def assert_absent(lam, name):
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert error_of(e) == ("ResourceNotFoundException", 404)


def files_named(root, fragment):
    hits = []
    for dirpath, dirnames, filenames in os.walk(root):
        hits += [os.path.join(dirpath, n) for n in filenames + dirnames if fragment in n]
    return hits


def test_malformed_json_create_function(server):
    r = signed_curl(server.endpoint, "/2015-03-31/functions", "lambda", method="POST", headers=JSON,
                    data='{"FunctionName": "broken", "Runtime": ')
    assert r.status == 400, (r.status, r.text)
    assert error_type(r) == "InvalidRequestContentException", r.headers
    body = r.json()
    assert body.get("Type") == "User", body
    assert body.get("message") or body.get("Message"), body


def test_malformed_json_create_api(server):
    r = signed_curl(server.endpoint, "/v2/apis", "apigateway", method="POST", headers=JSON, data="{not json")
    assert r.status == 400, (r.status, r.text)
    assert error_type(r) == "BadRequestException", r.headers
    assert "message" in r.json()


def test_malformed_invoke_payload(lam, server):
    name = unique("bad-payload")
    create_function(lam, name, {"index.mjs": HELLO_SRC})
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b'{"unterminated": ')
    assert error_of(e) == ("InvalidRequestContentException", 400)


def test_zip_that_is_no_zip(lam):
    name = unique("nozip")
    with pytest.raises(ClientError) as e:
        create(lam, name, b"this is not a zip file at all")
    assert error_of(e) == ("InvalidParameterValueException", 400)
    assert_absent(lam, name)


@pytest.mark.parametrize("entry", ["../evil-{tag}.txt", "code/../../evil-{tag}.txt", "/tmp/evil-{tag}.txt"])
def test_zip_with_escaping_entry(lam, server, entry):
    tag = unique("slip")
    name = unique("zipslip")
    zip_bytes = make_zip({"index.mjs": HELLO_SRC, entry.format(tag=tag): "pwned"})
    with pytest.raises(ClientError) as e:
        create(lam, name, zip_bytes)
    assert error_of(e) == ("InvalidParameterValueException", 400)
    assert_absent(lam, name)
    # Nothing written anywhere near the data dir, nor in /tmp.
    assert files_named(server.data_dir.parent, tag) == []
    assert not os.path.exists(f"/tmp/evil-{tag}.txt")


def test_zip_with_escaping_symlink(lam, server):
    name = unique("zipslink")
    zip_bytes = make_zip({"index.mjs": HELLO_SRC}, symlinks={"secrets": "../../../../../../etc"})
    with pytest.raises(ClientError) as e:
        create(lam, name, zip_bytes)
    assert error_of(e) == ("InvalidParameterValueException", 400)
    assert_absent(lam, name)


def test_duplicate_function_name(lam):
    name = unique("dup")
    create(lam, name, make_zip({"index.mjs": HELLO_SRC}))
    with pytest.raises(ClientError) as e:
        create(lam, name, make_zip({"index.mjs": HELLO_SRC}))
    assert error_of(e) == ("ResourceConflictException", 409)


def test_unknown_function(lam):
    name = unique("nope")
    for call in (
        lambda: lam.get_function(FunctionName=name),
        lambda: lam.get_function_configuration(FunctionName=name),
        lambda: lam.invoke(FunctionName=name, Payload=b"{}"),
        lambda: lam.delete_function(FunctionName=name),
        lambda: lam.get_policy(FunctionName=name),
        lambda: lam.update_function_configuration(FunctionName=name, Timeout=5),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert f"Function not found: {function_arn(name)}" in e.value.response["Error"]["Message"]


def test_unknown_function_raw_error_shape(server):
    r = signed_curl(server.endpoint, "/2015-03-31/functions/does-not-exist", "lambda")
    assert r.status == 404
    assert error_type(r) == "ResourceNotFoundException"
    assert r.headers.get("x-amzn-requestid")
    assert r.json().get("Type") == "User"


def test_error_body_members_follow_the_service_model(server):
    # botocore's lambda model: ResourceNotFoundException has members Type and *Message*;
    # InvalidParameterValueException (like most others) has Type and *message*.
    r = signed_curl(server.endpoint, "/2015-03-31/functions/does-not-exist", "lambda")
    assert error_type(r) == "ResourceNotFoundException"
    assert set(r.json()) == {"Type", "Message"}, r.json()
    r = signed_curl(server.endpoint, "/2015-03-31/functions", "lambda", method="POST", headers=JSON, data=json.dumps({
        "FunctionName": unique("badzip"), "Runtime": "nodejs22.x", "Role": ROLE, "Handler": "index.handler",
        "Code": {"ZipFile": "bm90IGEgemlw"}}))
    assert error_type(r) == "InvalidParameterValueException"
    assert set(r.json()) == {"Type", "message"}, r.json()


def test_unknown_api(apigw):
    with pytest.raises(ClientError) as e:
        apigw.get_api(ApiId="zzzzzzzzzz")
    assert error_of(e) == ("NotFoundException", 404)
    for call in (
        lambda: apigw.get_routes(ApiId="zzzzzzzzzz"),
        lambda: apigw.delete_api(ApiId="zzzzzzzzzz"),
        lambda: apigw.update_api(ApiId="zzzzzzzzzz", Name="x"),
        lambda: apigw.create_route(ApiId="zzzzzzzzzz", RouteKey="GET /x"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("NotFoundException", 404)


def test_invalid_runtime(lam):
    name = unique("badrt")
    with pytest.raises(ClientError) as e:
        create(lam, name, make_zip({"index.mjs": HELLO_SRC}), runtime="nodejs99.x")
    assert error_of(e) == ("InvalidParameterValueException", 400)
    assert_absent(lam, name)


def test_server_still_serves(lam, apigw, server):
    name = unique("after-bad")
    create_function(lam, name, {"index.mjs": HELLO_SRC})
    api_id = apigw.create_api(Name="after-bad", ProtocolType="HTTP", Target=function_arn(name))["ApiId"]
    allow_api(lam, name, api_id)
    r = curl(server.host_url(api_id, "/hello?name=Dev"))
    assert (r.status, r.body) == (200, b'{"message":"Hello, Dev!"}'), r.text
    assert server.proc.poll() is None


def test_zip_bomb_is_refused(lam, server):
    # 300 MB of zeros deflate to well under 1 MB; unzipped they exceed AWS's 250 MB limit.
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("index.mjs", HELLO_SRC)
        with z.open("zeros.bin", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(300):
                f.write(chunk)
    name = unique("zipbomb")
    with pytest.raises(ClientError) as e:
        create(lam, name, buf.getvalue())
    assert error_of(e) == ("InvalidParameterValueException", 400)
    assert "Unzipped size must be smaller than 262144000 bytes" in str(e.value)
    assert_absent(lam, name)


def test_zip_over_the_direct_upload_limit(lam):
    # Direct uploads (Code.ZipFile) are limited to 50 MB; the request is refused whole.
    name = unique("bigzip")
    with pytest.raises(ClientError) as e:
        create(lam, name, os.urandom(50 * 1024 * 1024 + 1))
    assert error_of(e)[1] == 413
    assert_absent(lam, name)


LARGE_RESPONSE_SRC = """
export const handler = async (event) => event.mb ? 'x'.repeat(event.mb * 1024 * 1024) : { ok: true };
"""


def test_invoke_payloads_over_the_limits(lam):
    # 6 MB each way for a synchronous invocation, 1 MB for an asynchronous one.
    name = unique("payload-limits")
    create_function(lam, name, {"index.mjs": LARGE_RESPONSE_SRC})
    big = json.dumps({"pad": "x" * (6 * 1024 * 1024)}).encode()
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=big)
    assert error_of(e) == ("RequestTooLargeException", 413)
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"pad": "x" * (1024 * 1024)}).encode())
    assert error_of(e) == ("RequestTooLargeException", 413)
    # A response over 6 MB is the function's error, answered 200 as Lambda does.
    r = lam.invoke(FunctionName=name, Payload=b'{"mb": 7}')
    assert (r["StatusCode"], r.get("FunctionError")) == (200, "Unhandled")
    body = json.loads(r["Payload"].read())
    assert body["errorType"] == "Function.ResponseSizeTooLarge", body
    assert "maximum allowed payload size" in body["errorMessage"], body
    # Just under the limit still passes, and the function keeps serving.
    r = lam.invoke(FunctionName=name, Payload=b'{"mb": 5}')
    assert r.get("FunctionError") is None and len(r["Payload"].read()) == 5 * 1024 * 1024 + 2
    assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == {"ok": True}


@pytest.mark.parametrize("field,value,code,fragment", [
    ("Timeout", 901, "ValidationException", "Member must have value less than or equal to 900"),
    ("MemorySize", 10241, "ValidationException", "Member must have value less than or equal to 10240"),
    ("Environment", {"Variables": {"BIG": "x" * 4096}}, "InvalidParameterValueException", "exceeded the 4KB limit"),
    ("Environment", {"Variables": {"AWS_REGION": "x"}}, "InvalidParameterValueException", "reserved keys"),
])
def test_configuration_out_of_range_is_refused_and_changes_nothing(lam, field, value, code, fragment):
    name = unique("badcfg")
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=name, Runtime="nodejs22.x", Role=ROLE, Handler="index.handler",
                            Code={"ZipFile": make_zip({"index.mjs": HELLO_SRC})}, **{field: value})
    assert error_of(e) == (code, 400) and fragment in str(e.value), str(e.value)
    assert_absent(lam, name)
    create_function(lam, name, {"index.mjs": HELLO_SRC})
    before = lam.get_function_configuration(FunctionName=name)
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=name, **{field: value})
    assert error_of(e) == (code, 400) and fragment in str(e.value), str(e.value)
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] == before["RevisionId"]


@pytest.mark.parametrize("source_arn", [
    "not-an-arn",
    "arn:aws:execute-api:*:111122223333:abcdefghij/*",  # IAM's wildcards live in the resource part only
    "arn:aws:execute-api:us-east-1:1111:abcdefghij/*",
])
def test_add_permission_with_a_malformed_source_arn_is_refused(lam, source_arn):
    name = unique("badsrcarn")
    create_function(lam, name, {"index.mjs": HELLO_SRC})
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=name, StatementId="s", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com", SourceArn=source_arn)
    assert error_of(e) == ("ValidationException", 400)
    assert "at 'sourceArn' failed to satisfy constraint" in str(e.value), str(e.value)
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name)
    assert error_of(e) == ("ResourceNotFoundException", 404)
