"""Lambda versions and aliases, and HTTP API stages choosing an alias through a stage
variable in the integration URI (`...:function:NAME:${stageVariables.alias}`)."""

import json
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, create_function, curl, error_of, make_zip, unique, wait_active

SOURCE = """
export const handler = async (event, context) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ release: "%s", version: process.env.AWS_LAMBDA_FUNCTION_VERSION,
                         functionVersion: context.functionVersion, invoked: context.invokedFunctionArn }),
});
"""


def code(release):
    return make_zip({"index.mjs": SOURCE % release})


def run(lam, name, **kw):
    r = lam.invoke(FunctionName=name, Payload=b"{}", **kw)
    assert "FunctionError" not in r
    return r["ExecutedVersion"], json.loads(json.loads(r["Payload"].read())["body"])


@pytest.fixture(scope="module")
def released(lam):
    """A function with version 1 (release one) and version 2 (release two)."""
    name = unique("versioned")
    lam.create_function(FunctionName=name, Runtime="nodejs22.x", Role=f"arn:aws:iam::{ACCOUNT}:role/r",
                        Handler="index.handler", Code={"ZipFile": code("one")})
    wait_active(lam, name)
    v1 = lam.publish_version(FunctionName=name, Description="first")
    lam.update_function_code(FunctionName=name, ZipFile=code("two"))
    wait_active(lam, name)
    v2 = lam.publish_version(FunctionName=name)
    return name, v1, v2


def test_publish_version(lam, released):
    name, v1, v2 = released
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert (v1["Version"], v1["FunctionArn"], v1["Description"]) == ("1", f"{arn}:1", "first")
    assert (v2["Version"], v2["FunctionArn"]) == ("2", f"{arn}:2")
    assert v1["CodeSha256"] != v2["CodeSha256"]
    # Nothing changed since version 2: publishing again gives version 2 back.
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    versions = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    page = lam.list_versions_by_function(FunctionName=name, MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    rest = lam.list_versions_by_function(FunctionName=name, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2"]
    assert lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]["CodeSha256"] == v1["CodeSha256"]
    assert lam.get_function_configuration(FunctionName=f"{name}:2")["Version"] == "2"
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name, Qualifier="9")
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_invoke_a_version(lam, released):
    name, _, _ = released
    executed, body = run(lam, name, Qualifier="1")
    assert executed == "1"
    assert body["release"] == "one" and body["version"] == "1" and body["functionVersion"] == "1"
    assert body["invoked"].endswith(f":function:{name}:1")
    executed, body = run(lam, f"{name}:2")
    assert (executed, body["release"]) == ("2", "two")
    executed, body = run(lam, name)
    assert (executed, body["release"], body["version"]) == ("$LATEST", "two", "$LATEST")


def test_aliases(lam, released):
    name, _, _ = released
    prod = lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1", Description="live")
    assert prod["AliasArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:prod"
    assert prod["FunctionVersion"] == "1"
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="2")
    assert error_of(e) == ("ResourceConflictException", 409)
    executed, body = run(lam, name, Qualifier="prod")
    assert (executed, body["release"]) == ("1", "one")
    assert body["invoked"] == prod["AliasArn"]
    updated = lam.update_alias(FunctionName=name, Name="prod", FunctionVersion="2")
    assert updated["RevisionId"] != prod["RevisionId"]
    assert run(lam, f"{name}:prod")[0] == "2"
    assert lam.get_alias(FunctionName=name, Name="prod")["FunctionVersion"] == "2"

    # Weighted routing: half of the invocations go to version 1.
    lam.update_alias(FunctionName=name, Name="prod", FunctionVersion="2",
                     RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    seen = Counter(run(lam, name, Qualifier="prod")[0] for _ in range(40))
    assert set(seen) == {"1", "2"}, seen
    assert lam.get_alias(FunctionName=name, Name="prod")["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.5}}

    lam.create_alias(FunctionName=name, Name="dev", FunctionVersion="$LATEST")
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["dev", "prod"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name, FunctionVersion="$LATEST")["Aliases"]] == ["dev"]
    # A version an alias uses cannot be deleted.
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=name, Qualifier="1")
    assert error_of(e) == ("ResourceConflictException", 409)
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="bad", FunctionVersion="7")
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_permissions_are_per_qualifier(lam, released):
    name, _, _ = released
    lam.add_permission(FunctionName=name, Qualifier="1", StatementId="v1-only", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    policy = json.loads(lam.get_policy(FunctionName=name, Qualifier="1")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["v1-only"]
    assert policy["Statement"][0]["Resource"].endswith(f":function:{name}:1")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name, Qualifier="2")
    assert error_of(e) == ("ResourceNotFoundException", 404)
    lam.remove_permission(FunctionName=name, Qualifier="1", StatementId="v1-only")


def test_stage_variables_pick_the_alias(lam, apigw, server):
    name = unique("staged-fn")
    create_function(lam, name, {"index.mjs": SOURCE % "one"})
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=code("two"))
    wait_active(lam, name)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
    lam.create_alias(FunctionName=name, Name="dev", FunctionVersion="2")

    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    api_id = apigw.create_api(Name=unique("aliased"), ProtocolType="HTTP")["ApiId"]
    iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
                                   IntegrationUri=f"{arn}:${{stageVariables.alias}}")["IntegrationId"]
    apigw.create_route(ApiId=api_id, RouteKey="GET /release", Target=f"integrations/{iid}")
    for stage in ("dev", "prod"):
        apigw.create_stage(ApiId=api_id, StageName=stage, AutoDeploy=True, StageVariables={"alias": stage})
    base = f"{server.endpoint}/execute-api/{api_id}"
    # Each alias needs its own permission, as on AWS.
    r = curl(f"{base}/dev/release")
    assert (r.status, r.text) == (500, '{"message":"Internal Server Error"}')
    for alias in ("dev", "prod"):
        lam.add_permission(FunctionName=name, Qualifier=alias, StatementId=f"apigw-{alias}",
                           Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/*/release")
    dev = json.loads(curl(f"{base}/dev/release").text)
    prod = json.loads(curl(f"{base}/prod/release").text)
    assert (dev["release"], dev["version"], dev["invoked"]) == ("two", "2", f"{arn}:dev")
    assert (prod["release"], prod["version"], prod["invoked"]) == ("one", "1", f"{arn}:prod")
    # Promoting dev's version to prod is an alias update: no API change.
    lam.update_alias(FunctionName=name, Name="prod", FunctionVersion="2")
    assert json.loads(curl(f"{base}/prod/release").text)["release"] == "two"
    # A stage without the variable cannot call anything.
    apigw.create_stage(ApiId=api_id, StageName="bare", AutoDeploy=True)
    assert curl(f"{base}/bare/release").status == 500


def test_delete_function_removes_versions_and_aliases(lam):
    name = unique("doomed")
    create_function(lam, name, {"index.mjs": SOURCE % "x"})
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.delete_alias(FunctionName=name, Name="live")
    lam.delete_function(FunctionName=name, Qualifier="1")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST"]
    lam.publish_version(FunctionName=name)  # numbers are never reused
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "2"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    lam.delete_function(FunctionName=name)
    for q in (None, "2", "live"):
        with pytest.raises(ClientError) as e:
            lam.get_function(FunctionName=name, **({"Qualifier": q} if q else {}))
        assert error_of(e) == ("ResourceNotFoundException", 404)


def quick_create_statement(lam, name, api_id, **qualifier):
    """The quick-create statement of `name`'s policy (or its alias's/version's)."""
    policy = json.loads(lam.get_policy(FunctionName=name, **qualifier)["Policy"])
    found = [s for s in policy["Statement"] if api_id in json.dumps(s.get("Condition", {}))]
    assert len(found) == 1, policy
    return found[0]


def test_quick_create_with_an_alias_target_grants_the_alias(lam, apigw, server):
    # The gateway checks the policy of what it invokes: for an alias target that is the
    # alias's own policy, so that is where quick create's grant must go.
    name = unique("quick-alias")
    create_function(lam, name, {"index.mjs": SOURCE % "aliased"})
    lam.publish_version(FunctionName=name)
    alias_arn = lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")["AliasArn"]
    api_id = apigw.create_api(Name=unique("quick-alias"), ProtocolType="HTTP", Target=alias_arn)["ApiId"]
    r = curl(f"{server.endpoint}/execute-api/{api_id}/anything")
    assert r.status == 200, r.text
    assert (r.json()["release"], r.json()["invoked"]) == ("aliased", alias_arn)
    s = quick_create_statement(lam, name, api_id, Qualifier="prod")
    assert s["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert s["Action"] == "lambda:InvokeFunction" and s["Resource"] == alias_arn
    assert s["Condition"]["ArnLike"]["AWS:SourceArn"].startswith(f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/")
    # Not granted on the unqualified function: that policy stays empty.
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name)
    assert error_of(e) == ("ResourceNotFoundException", 404)


def test_plain_quick_create_statement_is_in_the_functions_policy(lam, apigw, server):
    name = unique("quick-plain")
    arn = create_function(lam, name, {"index.mjs": SOURCE % "plain"})["FunctionArn"]
    api_id = apigw.create_api(Name=unique("quick-plain"), ProtocolType="HTTP", Target=arn)["ApiId"]
    assert curl(f"{server.endpoint}/execute-api/{api_id}/").status == 200
    s = quick_create_statement(lam, name, api_id)
    assert s["Effect"] == "Allow" and s["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert s["Action"] == "lambda:InvokeFunction" and s["Resource"] == arn
    assert s["Condition"]["ArnLike"]["AWS:SourceArn"] == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/*"
