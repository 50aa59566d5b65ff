"""Throttling of HTTP APIs: stage default and per-route token buckets, and the
account-level limit, each answering 429 {"message":"Too Many Requests"} past the burst."""

from conftest import HELLO_SRC, Server, allow_api, boto_client, create_function, curl, stop_and_check, unique

TOO_MANY = (429, '{"message":"Too Many Requests"}')


def statuses(url, n):
    return [curl(url).status for _ in range(n)]


def api_with_routes(lam, apigw, keys, **stage):
    fn = create_function(lam, unique("throttled"), {"index.mjs": HELLO_SRC})
    api_id = apigw.create_api(Name=unique("throttled"), ProtocolType="HTTP")["ApiId"]
    allow_api(lam, fn["FunctionName"], api_id)
    iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
                                   PayloadFormatVersion="2.0")["IntegrationId"]
    for key in keys:
        apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True, **stage)
    return api_id


def test_stage_default_route_settings_throttle_after_the_burst(lam, apigw, server):
    # A rate this low never refills during the test: exactly the burst gets through.
    api_id = api_with_routes(lam, apigw, ["GET /hello"],
                             DefaultRouteSettings={"ThrottlingBurstLimit": 3, "ThrottlingRateLimit": 0.001})
    url = f"{server.endpoint}/execute-api/{api_id}/hello?name=Dev"
    assert statuses(url, 3) == [200, 200, 200]
    r = curl(url)
    assert (r.status, r.text) == TOO_MANY
    assert r.headers.get("content-type") == "application/json"
    assert r.headers.get("apigw-requestid")


def test_route_settings_override_the_stage_default(lam, apigw, server):
    api_id = api_with_routes(lam, apigw, ["GET /tight", "GET /loose"],
                             RouteSettings={"GET /tight": {"ThrottlingBurstLimit": 1, "ThrottlingRateLimit": 0.001}})
    base = f"{server.endpoint}/execute-api/{api_id}"
    assert statuses(f"{base}/tight", 2) == [200, 429]
    assert statuses(f"{base}/loose", 5) == [200] * 5
    # Lifting the limit takes effect (a stage setting needs no deployment).
    apigw.update_stage(ApiId=api_id, StageName="$default",
                       RouteSettings={"GET /tight": {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 100}})
    assert statuses(f"{base}/tight", 3) == [200] * 3


def test_zero_burst_blocks_everything(lam, apigw, server):
    api_id = api_with_routes(lam, apigw, ["GET /hello"],
                             DefaultRouteSettings={"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0})
    r = curl(f"{server.endpoint}/execute-api/{api_id}/hello")
    assert (r.status, r.text) == TOO_MANY


def test_account_level_limit(tmp_path):
    s = Server(tmp_path / "data", tmp_path / "portico.log",
               extra_args=("--api-throttle-rate", "0.001", "--api-throttle-burst", "4")).start()
    try:
        lam, apigw = boto_client(s.endpoint, "lambda"), boto_client(s.endpoint, "apigatewayv2")
        a = api_with_routes(lam, apigw, ["GET /hello"])
        b = api_with_routes(lam, apigw, ["GET /hello"])
        # One bucket for the account: two APIs share it.
        got = statuses(f"{s.endpoint}/execute-api/{a}/hello", 3) + statuses(f"{s.endpoint}/execute-api/{b}/hello", 2)
        assert got == [200, 200, 200, 200, 429]
    finally:
        stop_and_check(s)


def test_a_burst_without_a_rate_does_not_block_the_route_for_good(lam, apigw, server):
    # AWS ("Throttling requests to your HTTP APIs"): route-level settings override the
    # account-level limits; a value left unset overrides nothing, so the rate stays the
    # account's (10 000 rps here) and the burst of 2 refills between sequential requests.
    # It once made a bucket that never refilled: [200, 200, 429, 429, ...] for good.
    api_id = api_with_routes(lam, apigw, ["GET /burst", "GET /rate"],
                             DefaultRouteSettings={"ThrottlingBurstLimit": 2},
                             RouteSettings={"GET /rate": {"ThrottlingRateLimit": 0.001}})
    base = f"{server.endpoint}/execute-api/{api_id}"
    assert statuses(f"{base}/burst", 6) == [200] * 6
    # The route's rate with the stage default's burst of 2: that one does run dry.
    assert statuses(f"{base}/rate", 3) == [200, 200, 429]
    stage = apigw.get_stage(ApiId=api_id, StageName="$default")
    assert stage["DefaultRouteSettings"].get("ThrottlingBurstLimit") == 2
    assert "ThrottlingRateLimit" not in stage["DefaultRouteSettings"]
