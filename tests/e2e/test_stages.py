"""Stages and deployments of HTTP APIs: a stage serves its deployment, AutoDeploy
redeploys on every change, and a stage without it changes only on CreateDeployment."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import allow_api, create_function, curl, error_of, unique

ECHO = """
export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ routeKey: event.routeKey, stage: event.requestContext.stage,
                         rawPath: event.rawPath, stageVariables: event.stageVariables ?? null }),
});
"""


@pytest.fixture(scope="module")
def echo(lam):
    name = unique("stage-echo")
    return create_function(lam, name, {"index.mjs": ECHO})["FunctionArn"]


def get(server, api_id, path):
    r = curl(f"{server.endpoint}/execute-api/{api_id}{path}")
    return r.status, (json.loads(r.text) if r.text.startswith("{") else r.text)


def make_api(apigw, lam, echo):
    api_id = apigw.create_api(Name=unique("staged"), ProtocolType="HTTP")["ApiId"]
    allow_api(lam, echo.rsplit(":", 1)[1], api_id)
    iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo,
                                   PayloadFormatVersion="2.0")["IntegrationId"]
    apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=f"integrations/{iid}")
    return api_id, iid


def test_named_stage_without_auto_deploy_serves_its_deployment_only(apigw, lam, echo, server):
    api_id, iid = make_api(apigw, lam, echo)
    stage = apigw.create_stage(ApiId=api_id, StageName="dev", StageVariables={"alias": "dev"})
    assert "DeploymentId" not in stage
    # Nothing deployed yet: the stage answers nothing.
    assert get(server, api_id, "/dev/a") == (404, {"message": "Not Found"})

    d1 = apigw.create_deployment(ApiId=api_id, StageName="dev", Description="first")
    assert d1["DeploymentStatus"] == "DEPLOYED" and d1["AutoDeployed"] is False
    assert apigw.get_stage(ApiId=api_id, StageName="dev")["DeploymentId"] == d1["DeploymentId"]
    status, body = get(server, api_id, "/dev/a")
    assert status == 200
    assert body == {"routeKey": "GET /a", "stage": "dev", "rawPath": "/dev/a", "stageVariables": {"alias": "dev"}}

    # A new route is invisible on the stage until the next deployment.
    apigw.create_route(ApiId=api_id, RouteKey="GET /b", Target=f"integrations/{iid}")
    assert get(server, api_id, "/dev/b")[0] == 404
    d2 = apigw.create_deployment(ApiId=api_id, StageName="dev")
    assert get(server, api_id, "/dev/b")[0] == 200

    # Rolling back: point the stage at the first deployment again.
    apigw.update_stage(ApiId=api_id, StageName="dev", DeploymentId=d1["DeploymentId"])
    assert get(server, api_id, "/dev/b")[0] == 404
    assert get(server, api_id, "/dev/a")[0] == 200

    ids = {d["DeploymentId"] for d in apigw.get_deployments(ApiId=api_id)["Items"]}
    assert ids == {d1["DeploymentId"], d2["DeploymentId"]}
    assert apigw.get_deployment(ApiId=api_id, DeploymentId=d1["DeploymentId"])["Description"] == "first"
    # A deployment a stage serves cannot be deleted; another can.
    with pytest.raises(ClientError) as e:
        apigw.delete_deployment(ApiId=api_id, DeploymentId=d1["DeploymentId"])
    assert error_of(e) == ("BadRequestException", 400)
    apigw.delete_deployment(ApiId=api_id, DeploymentId=d2["DeploymentId"])
    with pytest.raises(ClientError) as e:
        apigw.get_deployment(ApiId=api_id, DeploymentId=d2["DeploymentId"])
    assert error_of(e) == ("NotFoundException", 404)
    with pytest.raises(ClientError) as e:
        apigw.update_stage(ApiId=api_id, StageName="dev", DeploymentId="nosuchd")
    assert error_of(e) == ("NotFoundException", 404)


def test_auto_deploy_stage_follows_every_change(apigw, lam, echo, server):
    api_id, iid = make_api(apigw, lam, echo)
    stage = apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    assert stage["DeploymentId"], stage
    assert get(server, api_id, "/a")[0] == 200
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /c", Target=f"integrations/{iid}")
    assert get(server, api_id, "/c")[0] == 200
    deployments = apigw.get_deployments(ApiId=api_id)["Items"]
    assert all(d["AutoDeployed"] for d in deployments)
    assert apigw.get_stage(ApiId=api_id, StageName="$default")["DeploymentId"] in {d["DeploymentId"] for d in deployments}
    apigw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
    assert get(server, api_id, "/c")[0] == 404
    # CreateDeployment cannot target an auto-deployed stage.
    with pytest.raises(ClientError) as e:
        apigw.create_deployment(ApiId=api_id, StageName="$default")
    assert error_of(e) == ("BadRequestException", 400)


def test_cors_changes_are_deployed_like_routes(apigw, lam, echo, server):
    api_id, _ = make_api(apigw, lam, echo)
    apigw.create_stage(ApiId=api_id, StageName="prod")
    apigw.create_deployment(ApiId=api_id, StageName="prod")
    apigw.update_api(ApiId=api_id, CorsConfiguration={"AllowOrigins": ["https://app.example.com"],
                                                      "AllowMethods": ["GET"]})
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    r = curl(f"{server.endpoint}/execute-api/{api_id}/prod/a", method="OPTIONS", headers=preflight)
    assert "access-control-allow-origin" not in r.headers, "an undeployed CORS change is visible"
    apigw.create_deployment(ApiId=api_id, StageName="prod")
    r = curl(f"{server.endpoint}/execute-api/{api_id}/prod/a", method="OPTIONS", headers=preflight)
    assert r.headers.get("access-control-allow-origin") == "https://app.example.com"
