"""Routes with AuthorizationType AWS_IAM: the data-plane request is SigV4-signed for the
service `execute-api` (botocore's SigV4Auth, as the SDKs and `awscurl` sign) with one of
Portico's keys ("Control access to HTTP APIs with IAM authorization").

What API Gateway answers, and Portico with it: an unsigned request is 403
{"message":"Forbidden"}; an unknown key 403 {"message":"The security token included in the
request is invalid."}; a wrong secret or a tampered request 403 {"message":"The request
signature we calculated does not match ..."}; an old timestamp 403 "Signature expired: ...".
A signed request reaches the integration with the caller in requestContext.authorizer.iam
(2.0) or requestContext.identity (1.0). Portico has no IAM policies, so a key of another
account (which AWS admits only where an IAM policy allows execute-api:Invoke) is refused
with 403 {"message":"Forbidden"}.
"""

from __future__ import annotations

import datetime
import json

import pytest

from conftest import (
    ACCOUNT, AKID, REGION, SECRET, allow_api, create_function, curl, keys_create, sign_headers, signing_time, unique,
)

OTHER_ACCOUNT = "444455556666"
FORBIDDEN = {"message": "Forbidden"}
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."

ECHO = """
export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    authorizer: event.requestContext.authorizer ?? null,
    identity: event.requestContext.identity ?? null,
    body: event.body ?? null,
  }),
});
"""


@pytest.fixture(scope="module")
def iam_api(lam, apigw):
    """An API with AWS_IAM routes on payload 2.0 (`/iam`) and 1.0 (`/v1`), and an open one."""
    echo = create_function(lam, unique("iam-echo"), {"index.mjs": ECHO})["FunctionArn"]
    api_id = apigw.create_api(Name=unique("iam"), ProtocolType="HTTP")["ApiId"]
    allow_api(lam, echo.rsplit(":", 1)[1], api_id)
    v2 = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo,
                                  PayloadFormatVersion="2.0")["IntegrationId"]
    v1 = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo,
                                  PayloadFormatVersion="1.0")["IntegrationId"]
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    route = apigw.create_route(ApiId=api_id, RouteKey="ANY /iam", Target=f"integrations/{v2}",
                               AuthorizationType="AWS_IAM")
    assert route["AuthorizationType"] == "AWS_IAM" and "AuthorizerId" not in route
    apigw.create_route(ApiId=api_id, RouteKey="GET /v1", Target=f"integrations/{v1}", AuthorizationType="AWS_IAM")
    apigw.create_route(ApiId=api_id, RouteKey="GET /open", Target=f"integrations/{v2}")
    return api_id


def signed_call(server, url: str, method: str = "GET", data: bytes | None = None, service: str = "execute-api",
                credentials: tuple[str, str] | None = None, region: str = REGION, send: bytes | None = None,
                headers: dict[str, str] | None = None):
    """curl of `url` signed by botocore for `service` with the server's key (or
    `credentials`); `send` replaces the body after signing."""
    headers = sign_headers(url, service, method, headers, data, credentials or server.credentials, region)
    return curl(url, method=method, headers=headers, data=send if send is not None else data)


def test_a_signed_request_reaches_the_function_with_its_caller(server, iam_api):
    akid = server.credentials[0]
    for url in (server.host_url(iam_api, "/iam?x=1&y=a%20b"), server.path_url(iam_api, "/iam?x=1")):
        r = signed_call(server, url)
        assert r.status == 200, (url, r.text)
        assert r.json()["authorizer"] == {"iam": {
            "accessKey": akid, "accountId": ACCOUNT, "callerId": akid, "cognitoIdentity": None,
            "principalOrgId": None, "userArn": f"arn:aws:iam::{ACCOUNT}:root", "userId": akid,
        }}
    # The body is signed too, and reaches the function.
    r = signed_call(server, server.path_url(iam_api, "/iam"), "POST", data=b'{"pets": 2}',
                    headers={"Content-Type": "application/json"})
    assert r.status == 200, r.text
    assert r.json()["body"] == '{"pets": 2}'


def test_payload_1_0_describes_the_caller_in_identity(server, iam_api):
    r = signed_call(server, server.host_url(iam_api, "/v1"))
    assert r.status == 200, r.text
    identity = r.json()["identity"]
    akid = server.credentials[0]
    assert (identity["accessKey"], identity["accountId"], identity["caller"], identity["user"],
            identity["userArn"]) == (akid, ACCOUNT, akid, akid, f"arn:aws:iam::{ACCOUNT}:root")
    assert r.json()["authorizer"] is None


def test_a_presigned_url(server, iam_api):
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="GET", url=server.path_url(iam_api, "/iam?x=1"))
    SigV4QueryAuth(Credentials(*server.credentials), "execute-api", REGION, expires=60).add_auth(req)
    assert "X-Amz-Signature=" in req.url
    r = curl(req.url)
    assert r.status == 200, r.text
    assert r.json()["authorizer"]["iam"]["accessKey"] == server.credentials[0]
    r = curl(req.url.replace("x=1", "x=2"))
    assert (r.status, r.json()) == (403, {"message": MISMATCH})


def test_unsigned_requests_are_forbidden(server, iam_api):
    for url in (server.host_url(iam_api, "/iam"), server.path_url(iam_api, "/v1")):
        r = curl(url)
        assert (r.status, r.json()) == (403, FORBIDDEN), url
        assert r.headers.get("apigw-requestid")
    # A route without authorization needs no signature (and ignores one).
    assert curl(server.host_url(iam_api, "/open")).status == 200
    assert signed_call(server, server.host_url(iam_api, "/open")).status == 200


def test_wrong_secret_and_tampering(server, iam_api):
    url = server.path_url(iam_api, "/iam")
    wrong = (server.credentials[0], "not" + server.credentials[1][3:])
    r = signed_call(server, url, credentials=wrong)
    assert (r.status, r.json()) == (403, {"message": MISMATCH})
    # A body other than the one signed.
    r = signed_call(server, url, "POST", data=b'{"pets": 2}', send=b'{"pets": 3}')
    assert (r.status, r.json()) == (403, {"message": MISMATCH})
    # The query string is signed: one added in transit breaks the signature.
    headers = sign_headers(server.host_url(iam_api, "/iam"), "execute-api", credentials=server.credentials)
    r = curl(server.host_url(iam_api, "/iam?extra=1"), headers=headers)
    assert (r.status, r.json()) == (403, {"message": MISMATCH})


def test_unknown_key_other_service_region_and_expired(server, iam_api):
    url = server.host_url(iam_api, "/iam")
    r = signed_call(server, url, credentials=(AKID, SECRET))
    assert (r.status, r.json()) == (403, {"message": INVALID_TOKEN})
    r = signed_call(server, url, service="lambda")
    assert r.status == 403 and "execute-api" in r.json()["message"], r.text
    r = signed_call(server, url, region="eu-west-1")
    assert r.status == 403 and "eu-west-1" in r.json()["message"], r.text
    with signing_time(datetime.datetime.utcnow() - datetime.timedelta(minutes=10)):
        headers = sign_headers(url, "execute-api", credentials=server.credentials)
    r = curl(url, headers=headers)
    assert r.status == 403 and r.json()["message"].startswith("Signature expired: "), r.text


def test_another_accounts_key_is_forbidden(server, iam_api):
    other = keys_create(server.data_dir, OTHER_ACCOUNT)
    r = signed_call(server, server.host_url(iam_api, "/iam"), credentials=other)
    assert (r.status, r.json()) == (403, FORBIDDEN)
    # Another key of the API's own account is welcome.
    mine = keys_create(server.data_dir, ACCOUNT)
    r = signed_call(server, server.host_url(iam_api, "/iam"), credentials=mine)
    assert r.status == 200, r.text
    assert r.json()["authorizer"]["iam"]["accessKey"] == mine[0]


def test_update_route_to_and_from_aws_iam(server, apigw, iam_api):
    route = next(r for r in apigw.get_routes(ApiId=iam_api)["Items"] if r["RouteKey"] == "GET /open")
    url = server.host_url(iam_api, "/open")
    try:
        updated = apigw.update_route(ApiId=iam_api, RouteId=route["RouteId"], AuthorizationType="AWS_IAM")
        assert updated["AuthorizationType"] == "AWS_IAM"
        assert apigw.get_route(ApiId=iam_api, RouteId=route["RouteId"])["AuthorizationType"] == "AWS_IAM"
        assert curl(url).status == 403
        assert signed_call(server, url).status == 200
    finally:
        apigw.update_route(ApiId=iam_api, RouteId=route["RouteId"], AuthorizationType="NONE")
    assert curl(url).status == 200
    body = json.loads(curl(url).body)
    assert body["authorizer"] is None
