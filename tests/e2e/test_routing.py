"""HTTP API routing, CORS and invoke permissions, table-driven: each row is an API
configuration (routes, optional CorsConfiguration) plus a request, and the status,
headers and event (routeKey, pathParameters) the Node echo function saw.

AWS documentation the rows follow:
- "Working with routes for HTTP APIs" (docs.aws.amazon.com/apigateway/latest/developerguide/
  http-api-develop-routes.html): route keys, `{name}`/`{proxy+}`, `ANY`, `$default`, and
  the route priority (an exact method+path match first, then greedy path variables, then
  `$default`).
- "Configuring CORS for an HTTP API" (.../http-api-cors.html): the preflight is answered
  by API Gateway and never reaches the integration; on an actual request the CORS headers
  of the configuration replace (override) the integration's.
- Invoke permissions: IAM's ArnLike (each of the six ARN components compared on its own)
  against `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{method}/{path}`; a
  missing permission answers 500 {"message":"Internal Server Error"}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT, CLIENT_CONFIG, REGION, create_function, credentials_for, curl, error_of, unique

# Answers the event it got; a request header `x-echo-headers` (a JSON object) adds
# response headers, so a row can make the function return its own CORS headers.
ECHO = """
export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json", ...JSON.parse(event.headers?.["x-echo-headers"] ?? "{}") },
  body: JSON.stringify(event),
});
"""

INTERNAL_ERROR = (500, '{"message":"Internal Server Error"}')


@pytest.fixture(scope="module")
def echo(lam):
    """(name, arn) of one Node echo function shared by the module's APIs."""
    name = unique("routing-echo")
    return name, create_function(lam, name, {"index.mjs": ECHO})["FunctionArn"]


def source_arn(api_id: str, rest: str = "*") -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{rest}"


def make_api(apigw, fn_arn: str, route_keys, cors: dict | None = None, stage: str = "$default") -> str:
    """An HTTP API whose routes all go to `fn_arn` (payload 2.0), on an auto-deployed stage."""
    kw = {"CorsConfiguration": cors} if cors is not None else {}
    api_id = apigw.create_api(Name=unique("routing"), ProtocolType="HTTP", **kw)["ApiId"]
    iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn_arn,
                                   PayloadFormatVersion="2.0")["IntegrationId"]
    for key in route_keys:
        apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{iid}")
    apigw.create_stage(ApiId=api_id, StageName=stage, AutoDeploy=True)
    return api_id


def grant(lam, name: str, arn_pattern: str) -> str:
    sid = unique("apigw")
    lam.add_permission(FunctionName=name, StatementId=sid, Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com", SourceArn=arn_pattern)
    return sid


# --- permissions ----------------------------------------------------------------------------


def test_a_permission_for_another_api_or_route_does_not_let_the_gateway_invoke(lam, apigw, server):
    # A function of its own: its policy holds only what this test grants.
    name = unique("routing-perm")
    arn = create_function(lam, name, {"index.mjs": ECHO})["FunctionArn"]
    api_id = make_api(apigw, arn, ["GET /pets", "GET /other"])
    other_api = make_api(apigw, arn, ["GET /pets"])
    base = f"{server.endpoint}/execute-api/{api_id}"

    # The only statement names another API: the gateway may not invoke for this one.
    grant(lam, name, source_arn(other_api))
    r = curl(f"{base}/pets")
    assert (r.status, r.text) == INTERNAL_ERROR
    assert r.headers.get("apigw-requestid")
    assert curl(f"{server.endpoint}/execute-api/{other_api}/pets").status == 200

    # Another route of this API: GET /other is allowed, GET /pets still is not.
    grant(lam, name, source_arn(api_id, "*/GET/other"))
    assert curl(f"{base}/other").status == 200
    assert (curl(f"{base}/pets").status, curl(f"{base}/pets").text) == INTERNAL_ERROR

    # A pattern for this API's id as a prefix ("{apiId}x/*") names another API too.
    grant(lam, name, source_arn(api_id + "x"))
    assert curl(f"{base}/pets").status == 500

    # The right one: this stage, method and route.
    grant(lam, name, source_arn(api_id, "$default/GET/pets"))
    r = curl(f"{base}/pets")
    assert r.status == 200, r.text
    assert r.json()["routeKey"] == "GET /pets"


# --- the table ---------------------------------------------------------------------------------

ABSENT = object()  # a response header that must not be there
NOT_FOUND = (404, '{"message":"Not Found"}')
APP = "https://app.example.com"
EVIL = "https://evil.example.com"

# API configurations by name: (route keys, CorsConfiguration or None).
APIS = {
    # The example of AWS's "Routing API requests": an exact match first, then greedy
    # path variables, then $default.
    "priority": (["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default"], None),
    "methods": (["ANY /items", "GET /items", "GET /items/{id}"], None),
    # No $default: what matches nothing is 404.
    "strict": (["GET /hello", "GET /files/{path+}"], None),
    "cors_any": (["GET /items", "POST /items"],
                 {"AllowOrigins": ["*"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["content-type"],
                  "ExposeHeaders": ["x-request-id"], "MaxAge": 600}),
    "cors_credentials": (["GET /items"],
                         {"AllowOrigins": [APP], "AllowCredentials": True, "AllowMethods": ["GET"],
                          "AllowHeaders": ["authorization"], "ExposeHeaders": ["x-total"], "MaxAge": 300}),
}

PREFLIGHT = "preflight"  # `route` of a row the gateway answers itself (the function never runs)


@dataclass
class Row:
    name: str
    api: str
    method: str
    path: str
    status: int
    route: str | None = None  # routeKey the function saw; PREFLIGHT; None for a gateway error
    params: dict | None = None  # pathParameters the function saw (None: absent from the event)
    headers: dict = field(default_factory=dict)
    expect_headers: dict = field(default_factory=dict)  # name -> value, or ABSENT
    no_cors: bool = False  # no access-control-* header at all
    body: str | None = None  # the exact body, for gateway answers


def own_cors(**extra) -> str:
    """An x-echo-headers value: the function returns CORS headers of its own."""
    return json.dumps({"access-control-allow-origin": "https://theirs.example.com",
                       "access-control-allow-credentials": "false", "access-control-expose-headers": "x-theirs",
                       "access-control-max-age": "1", "x-own": "kept", **extra})


ROWS = [
    # Route priority (AWS's example table, plus the path variable's decoding).
    Row("exact match wins", "priority", "GET", "/pets/dog/1", 200, "GET /pets/dog/1"),
    Row("path variable next", "priority", "GET", "/pets/dog/2", 200, "GET /pets/dog/{id}", {"id": "2"}),
    Row("greedy variable next", "priority", "GET", "/pets/cat/1", 200, "GET /pets/{proxy+}", {"proxy": "cat/1"}),
    Row("greedy takes many segments", "priority", "GET", "/pets/a/b/c", 200, "GET /pets/{proxy+}",
        {"proxy": "a/b/c"}),
    Row("ANY greedy for another method", "priority", "POST", "/pets/cat/1", 200, "ANY /{proxy+}",
        {"proxy": "pets/cat/1"}),
    # `{proxy+}` needs at least one segment: the root falls through to $default.
    Row("$default last", "priority", "GET", "/", 200, "$default"),
    # "API Gateway decodes URL-encoded request parameters before passing them to your
    # backend integration."
    Row("percent-encoded variable is decoded", "priority", "GET", "/pets/dog/J%C3%BCrgen%20M", 200,
        "GET /pets/dog/{id}", {"id": "Jürgen M"}),
    # "use the ANY method to match all methods that you haven't defined for a resource".
    Row("a specific method beats ANY", "methods", "GET", "/items", 200, "GET /items"),
    Row("ANY takes the other methods", "methods", "DELETE", "/items", 200, "ANY /items"),
    Row("no ANY at that path: no route", "methods", "DELETE", "/items/7", *NOT_FOUND[:1], body=NOT_FOUND[1]),
    Row("no route and no $default: 404", "strict", "GET", "/nothing", *NOT_FOUND[:1], body=NOT_FOUND[1]),
    Row("method not routed: 404", "strict", "POST", "/hello", *NOT_FOUND[:1], body=NOT_FOUND[1]),
    # Trailing slashes: AWS's routes page documents none of this. Portico treats
    # `/hello/` as a path of its own (a last, empty segment): `GET /hello` does not match
    # it (404 here, $default where there is one), and a greedy variable needs at least
    # one character after its prefix. Reports from users (not AWS documentation) say
    # HTTP APIs do not fold `/hello/` into `/hello` either; unconfirmed.
    Row("trailing slash is not the same path", "strict", "GET", "/hello/", *NOT_FOUND[:1], body=NOT_FOUND[1]),
    Row("without it the route matches", "strict", "GET", "/hello", 200, "GET /hello"),
    Row("greedy keeps a trailing slash", "strict", "GET", "/files/a/b/", 200, "GET /files/{path+}",
        {"path": "a/b/"}),
    Row("greedy needs a segment", "strict", "GET", "/files/", *NOT_FOUND[:1], body=NOT_FOUND[1]),

    # CORS ("Configure CORS for HTTP APIs in API Gateway"). These APIs have no $default
    # and no ANY route on purpose: the same page says that "the $default route catches
    # requests for all methods and routes that you haven't explicitly defined, including
    # OPTIONS requests", i.e. on AWS a preflight may reach such a route, while Portico
    # answers every preflight itself (pinned by the seed tests); these rows hold either way.
    Row("AllowOrigins * on an actual request", "cors_any", "GET", "/items", 200, "GET /items",
        headers={"Origin": "https://any.example.org"},
        expect_headers={"access-control-allow-origin": "*", "access-control-expose-headers": "x-request-id",
                        "access-control-allow-credentials": ABSENT, "access-control-max-age": ABSENT}),
    # "API Gateway automatically sends a response to preflight OPTIONS requests, even if
    # there isn't an OPTIONS route configured for your API": the function never runs.
    # (The status is not in AWS's docs: Portico answers 204 No Content with no body.)
    Row("preflight with AllowOrigins *", "cors_any", "OPTIONS", "/items", 204, PREFLIGHT,
        headers={"Origin": "https://any.example.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
        expect_headers={"access-control-allow-origin": "*", "access-control-allow-methods": "GET,POST",
                        "access-control-allow-headers": "content-type", "access-control-max-age": "600"}),
    # "To return CORS headers, your request must contain an origin header."
    Row("no Origin, no CORS headers", "cors_any", "GET", "/items", 200, "GET /items", no_cors=True),
    Row("AllowCredentials with a named origin", "cors_credentials", "GET", "/items", 200, "GET /items",
        headers={"Origin": APP},
        expect_headers={"access-control-allow-origin": APP, "access-control-allow-credentials": "true",
                        "access-control-expose-headers": "x-total"}),
    Row("preflight with credentials and MaxAge", "cors_credentials", "OPTIONS", "/items", 204, PREFLIGHT,
        headers={"Origin": APP, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "Authorization"},
        expect_headers={"access-control-allow-origin": APP, "access-control-allow-credentials": "true",
                        "access-control-allow-methods": "GET", "access-control-allow-headers": "authorization",
                        "access-control-max-age": "300"}),
    Row("a refused origin gets no CORS headers", "cors_credentials", "GET", "/items", 200, "GET /items",
        headers={"Origin": EVIL}, no_cors=True),
    Row("a refused origin's preflight gets none either", "cors_credentials", "OPTIONS", "/items", 204, PREFLIGHT,
        headers={"Origin": EVIL, "Access-Control-Request-Method": "GET"}, no_cors=True),
    # "If you configure CORS for an API, API Gateway ignores CORS headers returned from
    # your backend integration."
    Row("the function's CORS headers are replaced", "cors_credentials", "GET", "/items", 200, "GET /items",
        headers={"Origin": APP, "x-echo-headers": own_cors()},
        expect_headers={"access-control-allow-origin": APP, "access-control-allow-credentials": "true",
                        "access-control-expose-headers": "x-total", "access-control-max-age": ABSENT,
                        "x-own": "kept"}),
    Row("and dropped for a refused origin", "cors_credentials", "GET", "/items", 200, "GET /items",
        headers={"Origin": EVIL, "x-echo-headers": own_cors()}, no_cors=True, expect_headers={"x-own": "kept"}),
]


@pytest.fixture(scope="module")
def apis(lam, apigw, echo):
    """API name -> id, each API's routes going to the echo function."""
    name, arn = echo
    ids = {}
    for key, (routes, cors) in APIS.items():
        ids[key] = make_api(apigw, arn, routes, cors)
        grant(lam, name, source_arn(ids[key]))
    return ids


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_routing_table(row: Row, apis, server):
    api_id = apis[row.api]
    r = curl(server.host_url(api_id, row.path), method=row.method, headers=row.headers)
    assert r.status == row.status, (r.status, r.text)
    assert r.headers.get("apigw-requestid"), r.headers
    if row.body is not None:
        assert r.text == row.body
    if row.route == PREFLIGHT:
        # Answered by the gateway: the echo function would have answered 200 with its event.
        assert r.body == b"", r.text
    elif row.route is not None:
        event = r.json()
        assert event["routeKey"] == row.route == event["requestContext"]["routeKey"]
        assert event.get("pathParameters") == row.params, event.get("pathParameters")
        assert event["rawPath"] == row.path.split("?")[0]
        assert event["requestContext"]["http"]["method"] == row.method
    for name, want in row.expect_headers.items():
        if want is ABSENT:
            assert name not in r.headers, (name, r.headers)
        else:
            assert r.headers.get(name) == want, (name, r.headers)
    if row.no_cors:
        assert not [k for k in r.headers if k.startswith("access-control-")], r.headers


# --- integrations -----------------------------------------------------------------------------


def test_integration_timeout_is_50_to_30000_ms(apigw, echo, server):
    # "between 50 and 30,000 milliseconds for HTTP APIs" (API reference, Integration);
    # the default is 30 seconds. AWS documents no message for a value out of range.
    _, arn = echo
    api_id = apigw.create_api(Name=unique("timeouts"), ProtocolType="HTTP")["ApiId"]
    # botocore refuses a value under its model's minimum (50) before sending it: this
    # client sends what it is given, so the server's own check is what answers.
    akid, secret = credentials_for(server.endpoint)
    raw = boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret, region_name=REGION).client(
        "apigatewayv2", endpoint_url=server.endpoint, config=CLIENT_CONFIG.merge(Config(parameter_validation=False)))

    def create(client=apigw, **kw):
        return client.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn,
                                         PayloadFormatVersion="2.0", **kw)

    for bad in (49, 30001, 0, -1):
        with pytest.raises(ClientError) as e:
            create(raw, TimeoutInMillis=bad)
        assert error_of(e) == ("BadRequestException", 400), bad
        assert "50" in str(e.value) and "30" in str(e.value)
    assert create()["TimeoutInMillis"] == 30000
    assert create(TimeoutInMillis=50)["TimeoutInMillis"] == 50
    iid = create(TimeoutInMillis=30000)["IntegrationId"]
    assert apigw.get_integration(ApiId=api_id, IntegrationId=iid)["TimeoutInMillis"] == 30000
    for bad in (49, 30001):
        with pytest.raises(ClientError) as e:
            raw.update_integration(ApiId=api_id, IntegrationId=iid, TimeoutInMillis=bad)
        assert error_of(e) == ("BadRequestException", 400), bad
    assert apigw.get_integration(ApiId=api_id, IntegrationId=iid)["TimeoutInMillis"] == 30000, "a refused update"
    assert apigw.update_integration(ApiId=api_id, IntegrationId=iid, TimeoutInMillis=29999)["TimeoutInMillis"] == 29999
