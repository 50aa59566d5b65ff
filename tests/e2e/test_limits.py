"""The data plane's request limits: 10 MB bodies and 10 240 bytes of request line and
headers, each answered by the gateway without invoking the function."""

from conftest import HELLO_SRC, create_function, curl, unique


def make_api(lam, apigw):
    fn = create_function(lam, unique("limits"), {"index.mjs": HELLO_SRC})
    return apigw.create_api(Name=unique("limits"), ProtocolType="HTTP", Target=fn["FunctionArn"])["ApiId"]


def test_body_over_10_mb_is_413(lam, apigw, server):
    url = f"{server.endpoint}/execute-api/{make_api(lam, apigw)}/hello"
    ok = curl(url, method="POST", data=b"x" * (10 * 1024 * 1024))
    assert ok.status == 200, ok.text
    r = curl(url, method="POST", data=b"x" * (10 * 1024 * 1024 + 1))
    assert (r.status, r.text) == (413, '{"message":"Request Entity Too Large"}')
    assert r.headers.get("apigw-requestid")


def test_request_head_over_10240_bytes_is_refused(lam, apigw, server):
    url = f"{server.endpoint}/execute-api/{make_api(lam, apigw)}/hello"
    assert curl(url, headers={"x-filler": "a" * 8000}).status == 200
    r = curl(url, headers={"x-filler": "a" * 10300})
    assert r.status == 431, r.text
    assert "10240" in r.text
    assert r.headers.get("apigw-requestid")
    # The server keeps serving.
    assert curl(url).status == 200
