"""Stop and restart on the same data dir: every function and API is served as before."""

import signal
import time

from conftest import (
    HELLO_SRC, ROLE, Server, allow_api, boto_client, create_function, curl, function_arn, make_zip,
    run_aws, stop_and_check, wait_active,
)

HELLO_BODY = b'{"message":"Hello, Dev!"}'


def test_restart_keeps_everything(tmp_path):
    own_dir = tmp_path
    data_dir = own_dir / "data"
    first = Server(data_dir, own_dir / "first.log").start()
    try:
        lam = boto_client(first.endpoint, "lambda")
        apigw = boto_client(first.endpoint, "apigatewayv2")
        create_function(lam, "hello-api", {"index.mjs": HELLO_SRC})
        api = apigw.create_api(Name="hello-http-api", ProtocolType="HTTP", Target=function_arn("hello-api"))
        api_id = api["ApiId"]
        allow_api(lam, "hello-api", api_id, sid="apigw-invoke")
        r = curl(first.host_url(api_id, "/hello?name=Dev"))
        assert (r.status, r.body) == (200, HELLO_BODY), r.text
        # A warm Node environment is running now.
        assert any("node" in cmd for _, cmd in first.processes()), first.processes()
        took = stop_and_check(first)  # exit code 0, nothing left behind
        assert took < 10, f"SIGTERM took {took:.1f}s"
    finally:
        first.kill()

    second = Server(data_dir, own_dir / "second.log").start()
    try:
        r = curl(second.host_url(api_id, "/hello?name=Dev"))
        assert (r.status, r.body) == (200, HELLO_BODY), (r.status, r.text, second.log_tail())
        assert r.headers.get("content-type") == "application/json"
        r = curl(second.path_url(api_id, "/hello?name=Dev"))
        assert (r.status, r.body) == (200, HELLO_BODY), r.text

        lam = boto_client(second.endpoint, "lambda")
        cfg = wait_active(lam, "hello-api", timeout=5)
        assert cfg["FunctionArn"] == function_arn("hello-api")
        apigw = boto_client(second.endpoint, "apigatewayv2")
        got = apigw.get_api(ApiId=api_id)
        assert got["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{second.port}"
        # The CLI sees the same state.
        res = run_aws(second.endpoint, "lambda", "get-function", "--function-name", "hello-api")
        assert res.rc == 0, res.err
        assert res.out["Configuration"]["State"] == "Active"
        # Still writable after the restart.
        t0 = time.monotonic()
        lam.update_function_configuration(FunctionName="hello-api", Description="after restart")
        wait_active(lam, "hello-api")
        assert lam.get_function(FunctionName="hello-api")["Configuration"]["Description"] == "after restart"
        assert time.monotonic() - t0 < 10
        stop_and_check(second, signal.SIGINT)  # Ctrl-C stops it as cleanly
    finally:
        second.kill()


def test_what_was_acknowledged_survives_a_kill(tmp_path):
    # Each call is durable before it is answered: SIGKILL right after the answers, with
    # no chance to flush anything, loses none of them.
    data_dir = tmp_path / "data"
    first = Server(data_dir, tmp_path / "first.log").start()
    try:
        lam = boto_client(first.endpoint, "lambda")
        apigw = boto_client(first.endpoint, "apigatewayv2")
        lam.create_function(FunctionName="hello-api", Runtime="nodejs22.x", Role=ROLE, Handler="index.handler",
                            Code={"ZipFile": make_zip({"index.mjs": HELLO_SRC})})
        api_id = apigw.create_api(Name="killed", ProtocolType="HTTP", Target=function_arn("hello-api"))["ApiId"]
        route_id = apigw.create_route(ApiId=api_id, RouteKey="GET /later")["RouteId"]
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.kill()

    second = Server(data_dir, tmp_path / "second.log").start()
    try:
        lam = boto_client(second.endpoint, "lambda")
        wait_active(lam, "hello-api")
        apigw = boto_client(second.endpoint, "apigatewayv2")
        assert route_id in [r["RouteId"] for r in apigw.get_routes(ApiId=api_id)["Items"]]
        r = curl(second.host_url(api_id, "/hello?name=Dev"))
        assert (r.status, r.body) == (200, HELLO_BODY), (r.status, r.text, second.log_tail())
        stop_and_check(second)
    finally:
        second.kill()
