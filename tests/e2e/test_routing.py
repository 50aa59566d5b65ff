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

import pytest

from conftest import ACCOUNT, REGION, create_function, curl, unique

ECHO = """
export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
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
