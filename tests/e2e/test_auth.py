"""SigV4 on every control-plane call, access keys and accounts.

What AWS answers, and Portico with it:
- no signature: Lambda and API Gateway 403 `MissingAuthenticationTokenException`
  "Missing Authentication Token" (what lambda.*.amazonaws.com answers an unsigned call);
  STS 403 `MissingAuthenticationToken`; CloudWatch Logs (JSON 1.1) 400;
- unknown access key: 403 `UnrecognizedClientException` "The security token included in
  the request is invalid." (STS: `InvalidClientTokenId`; Logs: 400);
- wrong secret, tampered request: 403 `InvalidSignatureException` "The request signature
  we calculated does not match ..." (STS: `SignatureDoesNotMatch`);
- a timestamp more than 5 minutes off (STS, Logs: 15): the same code, "Signature expired:
  ... is now earlier than ... (... - 5 min.)".
Each key belongs to one account and sees only that account's resources: another
account's function or API is "not found", as on AWS without a resource policy.
"""

import datetime
import json
import os
import stat
import subprocess
import time
import uuid

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT, AKID, CLIENT_CONFIG, HELLO_SRC, PORTICO_BIN, REGION, ROLE, SECRET, Server, boto_client, create_function,
    curl, error_of, function_arn, keys_create, make_zip, run_aws, sign_headers, signed_curl, signing_time,
    stop_and_check, unique,
)

OTHER_ACCOUNT = "444455556666"
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
JSON = {"Content-Type": "application/json"}


def error_type(r):
    return r.headers.get("x-amzn-errortype", "").split(":")[0]


def message_of(excinfo):
    return excinfo.value.response["Error"]["Message"]


def wait_stdout(server, prefix, timeout=5.0):
    """The server's stdout line starting with `prefix` (printed after the listening line)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in server.stdout_lines if line.startswith(prefix)]
        if found or time.monotonic() > deadline:
            assert found, f"no stdout line starts with {prefix!r}: {server.stdout_lines!r}"
            return found[0]
        time.sleep(0.02)


def portico_keys(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    return subprocess.run([str(PORTICO_BIN), "keys", *args], capture_output=True, text=True, timeout=30, env=env)


# --- the generated credentials -------------------------------------------------------------


def test_first_start_writes_a_private_credentials_file_the_clients_use(tmp_path):
    data = tmp_path / "data"
    s = Server(data, tmp_path / "portico.log").start()
    try:
        creds = data / "credentials"
        assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(data / "state" / "keys.db").st_mode) == 0o600
        akid, secret = s.credentials
        text = creds.read_text()
        assert f"[default]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n" in text
        # It says how to use the key, and never prints the secret.
        assert wait_stdout(s, "Created the administrator access key").startswith(
            f"Created the administrator access key {akid} for account {ACCOUNT} in {creds}")
        assert f"export AWS_SHARED_CREDENTIALS_FILE={creds}" in wait_stdout(s, "Use it: ")
        out = "\n".join(s.stdout_lines)
        # The AWS CLI with nothing but the credentials file.
        res = run_aws(s.endpoint, "sts", "get-caller-identity", credentials=(),
                      env_extra={"AWS_SHARED_CREDENTIALS_FILE": str(creds)})
        assert res.rc == 0, res.err
        assert res.out == {"UserId": akid, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}
        res = run_aws(s.endpoint, "lambda", "list-functions", credentials=(),
                      env_extra={"AWS_SHARED_CREDENTIALS_FILE": str(creds)})
        assert (res.rc, res.out) == (0, {"Functions": []}), res.err
        # boto3 reading the same file through its profile.
        core = botocore.session.Session()
        core.set_config_variable("credentials_file", str(creds))
        session = boto3.session.Session(botocore_session=core, profile_name="default", region_name=REGION)
        lam = session.client("lambda", endpoint_url=s.endpoint, config=CLIENT_CONFIG)
        name = unique("fromfile")
        create_function(lam, name, {"index.mjs": HELLO_SRC})
        assert lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == function_arn(name)
        stop_and_check(s)
        # A restart keeps the key and the file; nothing new is created.
        s = Server(data, tmp_path / "again.log").start()
        assert s.credentials == (akid, secret)
        wait_stdout(s, "More keys")
        assert not any(line.startswith("Created the administrator") for line in s.stdout_lines)
        assert boto_client(s.endpoint, "lambda").get_function(FunctionName=name)
        stop_and_check(s)
        # No secret in the server's output or its log.
        for path in (tmp_path / "portico.log", tmp_path / "again.log"):
            assert secret not in path.read_text(errors="replace")
        assert secret not in out
    finally:
        s.kill()


# --- refusals ------------------------------------------------------------------------------


def test_unsigned_calls_are_refused_and_change_nothing(server, lam):
    r = curl(f"{server.endpoint}/2015-03-31/functions/")
    assert (r.status, error_type(r)) == (403, "MissingAuthenticationTokenException"), r.text
    assert r.json()["message"] == "Missing Authentication Token"
    name = unique("unsigned")
    r = curl(f"{server.endpoint}/2015-03-31/functions", method="POST", headers=JSON, data=json.dumps({
        "FunctionName": name, "Runtime": "nodejs22.x", "Role": ROLE, "Handler": "index.handler",
        "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}))
    assert (r.status, error_type(r)) == (403, "MissingAuthenticationTokenException"), r.text
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert error_of(e) == ("ResourceNotFoundException", 404)
    r = curl(f"{server.endpoint}/v2/apis", method="POST", headers=JSON, data='{"name":"x","protocolType":"HTTP"}')
    assert (r.status, error_type(r)) == (403, "MissingAuthenticationTokenException"), r.text
    assert r.json() == {"message": "Missing Authentication Token"}
    r = curl(f"{server.endpoint}/", method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"},
             data="Action=GetCallerIdentity&Version=2011-06-15")
    assert r.status == 403, r.text
    assert "<Code>MissingAuthenticationToken</Code>" in r.text
    r = curl(f"{server.endpoint}/", method="POST", data="{}",
             headers={"X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Content-Type": "application/x-amz-json-1.1"})
    assert r.status == 400, r.text
    assert r.json()["__type"] == "MissingAuthenticationTokenException"
    # A JWT or other bearer token is no AWS signature.
    r = curl(f"{server.endpoint}/2015-03-31/functions/", headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"})
    assert (r.status, error_type(r)) == (403, "IncompleteSignatureException"), r.text


def test_unknown_access_key(server):
    other = (AKID, SECRET)
    for service, call, code, status in (
        ("lambda", lambda c: c.list_functions(), "UnrecognizedClientException", 403),
        ("apigatewayv2", lambda c: c.get_apis(), "UnrecognizedClientException", 403),
        ("sts", lambda c: c.get_caller_identity(), "InvalidClientTokenId", 403),
        ("logs", lambda c: c.describe_log_groups(), "UnrecognizedClientException", 400),
    ):
        with pytest.raises(ClientError) as e:
            call(boto_client(server.endpoint, service, credentials=other))
        assert error_of(e) == (code, status), service
        assert message_of(e) == INVALID_TOKEN
    res = run_aws(server.endpoint, "lambda", "list-functions", credentials=other)
    assert res.rc != 0 and "UnrecognizedClientException" in res.err, res.err


def test_wrong_secret(server):
    wrong = (server.credentials[0], "not" + server.credentials[1][3:])
    with pytest.raises(ClientError) as e:
        boto_client(server.endpoint, "lambda", credentials=wrong).list_functions()
    assert error_of(e) == ("InvalidSignatureException", 403)
    assert message_of(e) == MISMATCH
    with pytest.raises(ClientError) as e:
        boto_client(server.endpoint, "apigatewayv2", credentials=wrong).create_api(Name="nope", ProtocolType="HTTP")
    assert error_of(e) == ("InvalidSignatureException", 403)
    with pytest.raises(ClientError) as e:
        boto_client(server.endpoint, "sts", credentials=wrong).get_caller_identity()
    assert error_of(e) == ("SignatureDoesNotMatch", 403)
    assert message_of(e) == MISMATCH
    assert not [a for a in boto_client(server.endpoint, "apigatewayv2").get_apis()["Items"] if a["Name"] == "nope"]


def test_tampered_requests_are_refused_and_change_nothing(server, lam):
    url = server.endpoint
    mismatch = (403, "InvalidSignatureException")
    # Body: signed for one function, sent with another name.
    signed_name, sent_name = unique("signed"), unique("sent00")
    doc = {"FunctionName": signed_name, "Runtime": "nodejs22.x", "Role": ROLE, "Handler": "index.handler",
           "Code": {"ZipFile": __import__("base64").b64encode(make_zip({"index.mjs": HELLO_SRC})).decode()}}
    body = json.dumps(doc)
    h = sign_headers(f"{url}/2015-03-31/functions", "lambda", "POST", JSON, body)
    r = curl(f"{url}/2015-03-31/functions", method="POST", headers=h, data=body.replace(signed_name, sent_name))
    assert (r.status, error_type(r)) == mismatch, r.text
    assert r.json()["message"] == MISMATCH
    for n in (signed_name, sent_name):
        with pytest.raises(ClientError) as e:
            lam.get_function(FunctionName=n)
        assert error_of(e) == ("ResourceNotFoundException", 404)
    # Path: signed to delete a function that does not exist, sent to delete one that does.
    victim = unique("victim")
    create_function(lam, victim, {"index.mjs": HELLO_SRC})
    h = sign_headers(f"{url}/2015-03-31/functions/{unique('absent')}", "lambda", "DELETE")
    r = curl(f"{url}/2015-03-31/functions/{victim}", method="DELETE", headers=h)
    assert (r.status, error_type(r)) == mismatch, r.text
    before = lam.get_function_configuration(FunctionName=victim)
    # Query: signed for one qualifier, sent with another.
    h = sign_headers(f"{url}/2015-03-31/functions/{victim}?Qualifier=1", "lambda")
    r = curl(f"{url}/2015-03-31/functions/{victim}?Qualifier=%24LATEST", headers=h)
    assert (r.status, error_type(r)) == mismatch, r.text
    # A signed header: the operation of a Logs call (X-Amz-Target) swapped in transit.
    logs = boto_client(url, "logs")
    group = f"/portico/tamper/{unique('g')}"
    logs.create_log_group(logGroupName=group)
    body = json.dumps({"logGroupName": group})
    h = sign_headers(f"{url}/", "logs", "POST",
                     {"X-Amz-Target": "Logs_20140328.CreateLogGroup", "Content-Type": "application/x-amz-json-1.1"}, body)
    h["X-Amz-Target"] = "Logs_20140328.DeleteLogGroup"
    r = curl(f"{url}/", method="POST", headers=h, data=body)
    assert (r.status, r.json()["__type"]) == (400, "InvalidSignatureException"), r.text
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]] == [group]
    # An x-amz-* header added after signing is refused as well.
    h = sign_headers(f"{url}/2015-03-31/functions/{victim}/invocations", "lambda", "POST", data="{}")
    h["X-Amz-Invocation-Type"] = "Event"
    r = curl(f"{url}/2015-03-31/functions/{victim}/invocations", method="POST", headers=h, data="{}")
    assert (r.status, error_type(r)) == (403, "IncompleteSignatureException"), r.text
    after = lam.get_function_configuration(FunctionName=victim)
    assert after["RevisionId"] == before["RevisionId"]


def test_expired_and_future_signatures(server):
    now = datetime.datetime.utcnow()
    for at, text in ((now - datetime.timedelta(minutes=20), "Signature expired: "),
                     (now + datetime.timedelta(minutes=20), "Signature not yet current: ")):
        with signing_time(at):
            with pytest.raises(ClientError) as e:
                boto_client(server.endpoint, "lambda").list_functions()
            assert error_of(e) == ("InvalidSignatureException", 403)
            assert message_of(e).startswith(text + at.strftime("%Y%m%dT%H%M%SZ")), message_of(e)
            assert message_of(e).endswith(" min.)"), message_of(e)
            with pytest.raises(ClientError) as e:
                boto_client(server.endpoint, "sts").get_caller_identity()
            assert error_of(e) == ("SignatureDoesNotMatch", 403)
            assert text in message_of(e)
    # Within the window, a slow clock is fine.
    with signing_time(now - datetime.timedelta(minutes=3)):
        boto_client(server.endpoint, "lambda").list_functions()


def test_presigned_get(server, lam):
    name = unique("presign")
    create_function(lam, name, {"index.mjs": HELLO_SRC})
    url = lam.generate_presigned_url("get_function", Params={"FunctionName": name}, ExpiresIn=60)
    assert "X-Amz-Signature=" in url and "Authorization" not in url
    r = curl(url)
    assert r.status == 200, r.text
    assert r.json()["Configuration"]["FunctionName"] == name
    # The URL names its function: another one is not covered by the signature.
    other = unique("presign")
    create_function(lam, other, {"index.mjs": HELLO_SRC})
    r = curl(url.replace(name, other))
    assert (r.status, error_type(r)) == (403, "InvalidSignatureException"), r.text
    # Past X-Amz-Expires it is refused.
    with signing_time(datetime.datetime.utcnow() - datetime.timedelta(seconds=120)):
        old = lam.generate_presigned_url("get_function", Params={"FunctionName": name}, ExpiresIn=60)
    r = curl(old)
    assert (r.status, error_type(r)) == (403, "InvalidSignatureException"), r.text
    assert r.json()["message"].startswith("Signature expired: ")


# --- keys and accounts ----------------------------------------------------------------------


def test_keys_create_works_at_once_and_delete_revokes_at_once(server):
    akid, secret = keys_create(server.data_dir)
    sts = boto_client(server.endpoint, "sts", credentials=(akid, secret))
    assert sts.get_caller_identity()["UserId"] == akid
    listed = portico_keys("list", "--data-dir", str(server.data_dir))
    assert listed.returncode == 0, listed.stderr
    assert akid in listed.stdout and ACCOUNT in listed.stdout
    assert secret not in listed.stdout and server.credentials[1] not in listed.stdout
    deleted = portico_keys("delete", "--data-dir", str(server.data_dir), akid)
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert error_of(e) == ("InvalidClientTokenId", 403)
    with pytest.raises(ClientError) as e:
        boto_client(server.endpoint, "lambda", credentials=(akid, secret)).list_functions()
    assert error_of(e) == ("UnrecognizedClientException", 403)
    assert akid not in portico_keys("list", "--data-dir", str(server.data_dir)).stdout
    again = portico_keys("delete", "--data-dir", str(server.data_dir), akid)
    assert again.returncode != 0 and "no access key" in again.stderr
    bad = portico_keys("create", "--data-dir", str(server.data_dir), "--account-id", "12")
    assert bad.returncode != 0 and "12 digits" in bad.stderr


def test_accounts_cannot_see_or_touch_each_other(server, lam, apigw):
    b_key = keys_create(server.data_dir, OTHER_ACCOUNT)
    b_lam = boto_client(server.endpoint, "lambda", credentials=b_key)
    b_apigw = boto_client(server.endpoint, "apigatewayv2", credentials=b_key)
    b_logs = boto_client(server.endpoint, "logs", credentials=b_key)
    ident = boto_client(server.endpoint, "sts", credentials=b_key).get_caller_identity()
    assert (ident["Account"], ident["UserId"], ident["Arn"]) == (
        OTHER_ACCOUNT, b_key[0], f"arn:aws:iam::{OTHER_ACCOUNT}:root")
    assert boto_client(server.endpoint, "sts").get_caller_identity()["Account"] == ACCOUNT

    name = unique("mine")
    created = create_function(lam, name, {"index.mjs": HELLO_SRC})
    lam.invoke(FunctionName=name, Payload=b"{}")
    api_id = apigw.create_api(Name=unique("mine"), ProtocolType="HTTP", Target=function_arn(name))["ApiId"]

    # B sees none of A's resources ...
    assert name not in [f["FunctionName"] for f in b_lam.list_functions()["Functions"]]
    assert api_id not in [a["ApiId"] for a in b_apigw.get_apis()["Items"]]
    assert f"/aws/lambda/{name}" not in [g["logGroupName"] for g in b_logs.describe_log_groups()["logGroups"]]
    # ... and can read, change, delete or invoke none of them, by name or by A's ARN.
    for ref in (name, function_arn(name)):
        for call in (
            lambda: b_lam.get_function(FunctionName=ref),
            lambda: b_lam.get_function_configuration(FunctionName=ref),
            lambda: b_lam.update_function_configuration(FunctionName=ref, Timeout=9),
            lambda: b_lam.update_function_code(FunctionName=ref, ZipFile=make_zip({"index.mjs": "evil"})),
            lambda: b_lam.invoke(FunctionName=ref, Payload=b"{}"),
            lambda: b_lam.add_permission(FunctionName=ref, StatementId="steal", Action="lambda:InvokeFunction",
                                         Principal="apigateway.amazonaws.com"),
            lambda: b_lam.delete_function(FunctionName=ref),
        ):
            with pytest.raises(ClientError) as e:
                call()
            assert error_of(e) == ("ResourceNotFoundException", 404), ref
    for call in (
        lambda: b_apigw.get_api(ApiId=api_id),
        lambda: b_apigw.get_routes(ApiId=api_id),
        lambda: b_apigw.update_api(ApiId=api_id, Name="stolen"),
        lambda: b_apigw.create_route(ApiId=api_id, RouteKey="GET /evil"),
        lambda: b_apigw.delete_api(ApiId=api_id),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("NotFoundException", 404)
    with pytest.raises(ClientError) as e:
        b_logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")
    assert error_of(e) == ("ResourceNotFoundException", 400)

    # B has its own namespace: the same name is free there, and A's function is untouched.
    mine = create_function(b_lam, name, {"index.mjs": HELLO_SRC.replace("Hello", "Howdy")})
    assert mine["FunctionArn"] == f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:{name}"
    assert [f["FunctionName"] for f in b_lam.list_functions()["Functions"]] == [name]
    cfg = lam.get_function_configuration(FunctionName=name)
    assert (cfg["CodeSha256"], cfg["Timeout"], cfg["FunctionArn"]) == (
        created["CodeSha256"], created["Timeout"], function_arn(name))
    assert apigw.get_api(ApiId=api_id)["Name"].startswith("mine-")
    b_lam.delete_function(FunctionName=name)
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
    # The CLI with B's key sees the same.
    res = run_aws(server.endpoint, "lambda", "get-function", "--function-name", name, credentials=b_key)
    assert res.rc != 0 and "ResourceNotFoundException" in res.err, res.err


# --- insecure mode --------------------------------------------------------------------------


def test_insecure_mode_warns_and_accepts_anything(tmp_path):
    s = Server(tmp_path / "data", tmp_path / "portico.log", ("--insecure-accept-any-credentials",)).start()
    try:
        wait_stdout(s, "WARNING: --insecure-accept-any-credentials: signatures are NOT checked")
        assert "INSECURE: --insecure-accept-any-credentials" in s.log_path.read_text()
        r = curl(f"{s.endpoint}/2015-03-31/functions/")
        assert (r.status, r.json()) == (200, {"Functions": []}), r.text
        for creds in ((AKID, SECRET), (s.credentials[0], "wrong")):
            ident = boto_client(s.endpoint, "sts", credentials=creds).get_caller_identity()
            assert (ident["Account"], ident["UserId"]) == (ACCOUNT, creds[0])
        lam = boto_client(s.endpoint, "lambda", credentials=(AKID, SECRET))
        create_function(lam, "anyone", {"index.mjs": HELLO_SRC})
        # The region still comes from the signature's scope.
        west = boto_client(s.endpoint, "lambda", credentials=(AKID, "x"), region="eu-west-1")
        assert west.list_functions()["Functions"] == []
        r = signed_curl(s.endpoint, "/2015-03-31/functions/", "lambda", credentials=(AKID, "x"))
        assert [f["FunctionName"] for f in r.json()["Functions"]] == ["anyone"]
        stop_and_check(s)
    finally:
        s.kill()


def test_cross_account_integration_follows_the_function_policy(server, lam):
    # Account B's API may call account A's function only once A's resource policy lets
    # API Gateway invoke it for B's API, as on AWS.
    b_key = keys_create(server.data_dir, OTHER_ACCOUNT)
    b_apigw = boto_client(server.endpoint, "apigatewayv2", credentials=b_key)
    name = f"shared-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="nodejs22.x", Role=f"arn:aws:iam::{ACCOUNT}:role/r",
                        Handler="index.handler", Code={"ZipFile": make_zip({"index.mjs": HELLO_SRC})})
    for _ in range(100):
        if lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active":
            break
        time.sleep(0.05)
    api_id = b_apigw.create_api(Name="theirs", ProtocolType="HTTP", Target=function_arn(name))["ApiId"]
    url = f"{server.endpoint}/execute-api/{api_id}/hello?name=Dev"
    r = curl(url)
    assert (r.status, r.text) == (500, '{"message":"Internal Server Error"}')
    lam.add_permission(FunctionName=name, StatementId="from-b", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{REGION}:{OTHER_ACCOUNT}:{api_id}/*")
    r = curl(url)
    assert (r.status, r.text) == (200, '{"message":"Hello, Dev!"}')


# --- presigned STS ----------------------------------------------------------------------------


def test_presigned_get_caller_identity(server):
    """A presigned GetCallerIdentity URL (how EKS tokens and Vault's IAM login prove an
    identity) fetched with plain curl. STS answers a mismatch and an expired signature
    with 403 `SignatureDoesNotMatch`, the expiry saying "Signature expired: ... is now
    earlier than ..." (what `aws sts get-caller-identity` prints on a skewed clock).
    Real STS ignores X-Amz-Expires and keeps every presigned URL about 15 minutes
    (aws-sdk-go #2167, PR #2224); Portico honours the shorter lifetime asked for."""
    sts = boto_client(server.endpoint, "sts")

    def presign(client, **kw):
        # GET, as EKS and Vault presign it (botocore's default for STS is a POST's signature).
        return client.generate_presigned_url("get_caller_identity", HttpMethod="GET", **kw)

    url = presign(sts, ExpiresIn=60)
    assert url.startswith(f"{server.endpoint}/?") and "Action=GetCallerIdentity" in url, url
    assert "X-Amz-Signature=" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url, url
    r = curl(url)
    assert r.status == 200, r.text
    assert r.headers["content-type"].startswith("text/xml"), r.headers
    assert f"<Account>{ACCOUNT}</Account>" in r.text, r.text
    assert f"<UserId>{server.credentials[0]}</UserId>" in r.text, r.text
    assert f"<Arn>arn:aws:iam::{ACCOUNT}:root</Arn>" in r.text, r.text
    # Another account's key answers for its own account.
    b_key = keys_create(server.data_dir, OTHER_ACCOUNT)
    b_url = presign(boto_client(server.endpoint, "sts", credentials=b_key))
    r = curl(b_url)
    assert r.status == 200 and f"<Account>{OTHER_ACCOUNT}</Account>" in r.text, r.text

    # Tampered: one hex digit of the signature changed.
    head, sig = url.split("X-Amz-Signature=")
    sig, _, tail = sig.partition("&")
    bad = f"{head}X-Amz-Signature={'1' if sig[0] != '1' else '2'}{sig[1:]}{'&' + tail if tail else ''}"
    r = curl(bad)
    assert (r.status, error_type(r)) == (403, "SignatureDoesNotMatch"), r.text
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text and "<Type>Sender</Type>" in r.text, r.text
    assert MISMATCH in r.text, r.text
    # Tampered: the action the signature covers swapped in transit.
    r = curl(url.replace("Action=GetCallerIdentity", "Action=GetSessionToken"))
    assert (r.status, error_type(r)) == (403, "SignatureDoesNotMatch"), r.text
    # Signed for POST (botocore's default), fetched with GET: the method is signed too.
    r = curl(sts.generate_presigned_url("get_caller_identity"))
    assert (r.status, error_type(r)) == (403, "SignatureDoesNotMatch"), r.text
    # Signed with a wrong secret.
    wrong = (server.credentials[0], "not" + server.credentials[1][3:])
    r = curl(presign(boto_client(server.endpoint, "sts", credentials=wrong)))
    assert (r.status, error_type(r)) == (403, "SignatureDoesNotMatch"), r.text

    # Expired: X-Amz-Expires=1, fetched two seconds later.
    short = presign(sts, ExpiresIn=1)
    time.sleep(2.2)
    r = curl(short)
    assert (r.status, error_type(r)) == (403, "SignatureDoesNotMatch"), r.text
    assert "<Message>Signature expired: " in r.text and "is now earlier than" in r.text, r.text
    assert "- 1 sec.)" in r.text, r.text

    # `GET /` that is no STS call is not found, as any unknown path.
    r = curl(f"{server.endpoint}/")
    assert (r.status, r.text) == (404, "Not Found\n"), r.text
    # An unsigned GET with an action is STS's refusal.
    r = curl(f"{server.endpoint}/?Action=GetCallerIdentity&Version=2011-06-15")
    assert (r.status, error_type(r)) == (403, "MissingAuthenticationToken"), r.text


def without_metadata(doc):
    return {k: v for k, v in doc.items() if k != "ResponseMetadata"}


def test_accounts_cannot_touch_each_others_sub_resources(server, lam, apigw):
    """Account B's key against every kind of sub-resource of account A: integrations,
    routes, stages, authorizers, deployments, versions and aliases, the resource policy
    and reserved concurrency. Each call is answered as for a resource that does not exist
    (Lambda 404 `ResourceNotFoundException`, API Gateway 404 `NotFoundException`, as the
    tests above), and A's resources read the same afterwards."""
    b_key = keys_create(server.data_dir, OTHER_ACCOUNT)
    b_lam = boto_client(server.endpoint, "lambda", credentials=b_key)
    b_apigw = boto_client(server.endpoint, "apigatewayv2", credentials=b_key)

    name = unique("subres")
    create_function(lam, name, {"index.mjs": HELLO_SRC})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.add_permission(FunctionName=name, StatementId="mine", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    api_id = apigw.create_api(Name=unique("subres"), ProtocolType="HTTP")["ApiId"]
    iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn(name),
                                   PayloadFormatVersion="2.0")["IntegrationId"]
    route_id = apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=f"integrations/{iid}")["RouteId"]
    auth_id = apigw.create_authorizer(
        ApiId=api_id, AuthorizerType="JWT", Name="jwt", IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Issuer": "https://issuer.example.com", "Audience": ["a"]})["AuthorizerId"]
    deployment_id = apigw.create_deployment(ApiId=api_id)["DeploymentId"]
    apigw.create_stage(ApiId=api_id, StageName="prod", DeploymentId=deployment_id)

    def a_state():
        return {
            "config": without_metadata(lam.get_function_configuration(FunctionName=name)),
            "version": without_metadata(lam.get_function_configuration(FunctionName=name, Qualifier=version)),
            "versions": lam.list_versions_by_function(FunctionName=name)["Versions"],
            "aliases": lam.list_aliases(FunctionName=name)["Aliases"],
            "policy": without_metadata(lam.get_policy(FunctionName=name)),
            "concurrency": without_metadata(lam.get_function_concurrency(FunctionName=name)),
            "integrations": apigw.get_integrations(ApiId=api_id)["Items"],
            "routes": apigw.get_routes(ApiId=api_id)["Items"],
            "authorizers": apigw.get_authorizers(ApiId=api_id)["Items"],
            "deployments": apigw.get_deployments(ApiId=api_id)["Items"],
            "stages": apigw.get_stages(ApiId=api_id)["Items"],
        }

    before = a_state()
    lambda_calls = {
        "get_function(version)": lambda c, f: c.get_function(FunctionName=f, Qualifier=version),
        "get_function(alias)": lambda c, f: c.get_function_configuration(FunctionName=f, Qualifier="live"),
        "invoke(alias)": lambda c, f: c.invoke(FunctionName=f, Qualifier="live", Payload=b"{}"),
        "publish_version": lambda c, f: c.publish_version(FunctionName=f),
        "list_versions_by_function": lambda c, f: c.list_versions_by_function(FunctionName=f),
        "delete_function(version)": lambda c, f: c.delete_function(FunctionName=f, Qualifier=version),
        "list_aliases": lambda c, f: c.list_aliases(FunctionName=f),
        "get_alias": lambda c, f: c.get_alias(FunctionName=f, Name="live"),
        "create_alias": lambda c, f: c.create_alias(FunctionName=f, Name="theirs", FunctionVersion=version),
        "update_alias": lambda c, f: c.update_alias(FunctionName=f, Name="live", FunctionVersion="$LATEST"),
        "delete_alias": lambda c, f: c.delete_alias(FunctionName=f, Name="live"),
        "get_policy": lambda c, f: c.get_policy(FunctionName=f),
        "remove_permission": lambda c, f: c.remove_permission(FunctionName=f, StatementId="mine"),
        "get_function_concurrency": lambda c, f: c.get_function_concurrency(FunctionName=f),
        "put_function_concurrency": lambda c, f: c.put_function_concurrency(
            FunctionName=f, ReservedConcurrentExecutions=0),
        "delete_function_concurrency": lambda c, f: c.delete_function_concurrency(FunctionName=f),
    }
    refused = []
    for ref in (name, function_arn(name), f"{function_arn(name)}:live"):
        for what, call in lambda_calls.items():
            if ref.endswith(":live") and what in ("get_function(version)", "get_function(alias)", "invoke(alias)",
                                                  "delete_function(version)"):
                continue  # a qualified ARN and a Qualifier together are another error
            with pytest.raises(ClientError) as e:
                call(b_lam, ref)
            refused.append((what, ref, error_of(e)))
    assert [r for r in refused if r[2] != ("ResourceNotFoundException", 404)] == []
    # The same reads with A's key succeed: B's refusals are about the account, not the call.
    for what, call in lambda_calls.items():
        if what.startswith(("get_", "list_")):
            call(lam, name)

    target = f"integrations/{iid}"
    apigw_calls = {
        "get_integrations": lambda c: c.get_integrations(ApiId=api_id),
        "get_integration": lambda c: c.get_integration(ApiId=api_id, IntegrationId=iid),
        "create_integration": lambda c: c.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn(name), PayloadFormatVersion="2.0"),
        "update_integration": lambda c: c.update_integration(ApiId=api_id, IntegrationId=iid, TimeoutInMillis=1000),
        "delete_integration": lambda c: c.delete_integration(ApiId=api_id, IntegrationId=iid),
        "get_route": lambda c: c.get_route(ApiId=api_id, RouteId=route_id),
        "update_route": lambda c: c.update_route(ApiId=api_id, RouteId=route_id, AuthorizationType="JWT",
                                                AuthorizerId=auth_id),
        "delete_route": lambda c: c.delete_route(ApiId=api_id, RouteId=route_id),
        "get_authorizers": lambda c: c.get_authorizers(ApiId=api_id),
        "get_authorizer": lambda c: c.get_authorizer(ApiId=api_id, AuthorizerId=auth_id),
        "create_authorizer": lambda c: c.create_authorizer(
            ApiId=api_id, AuthorizerType="JWT", Name="theirs", IdentitySource=["$request.header.Authorization"],
            JwtConfiguration={"Issuer": "https://evil.example.com", "Audience": ["b"]}),
        "update_authorizer": lambda c: c.update_authorizer(
            ApiId=api_id, AuthorizerId=auth_id, JwtConfiguration={"Issuer": "https://evil.example.com"}),
        "delete_authorizer": lambda c: c.delete_authorizer(ApiId=api_id, AuthorizerId=auth_id),
        "get_deployments": lambda c: c.get_deployments(ApiId=api_id),
        "get_deployment": lambda c: c.get_deployment(ApiId=api_id, DeploymentId=deployment_id),
        "create_deployment": lambda c: c.create_deployment(ApiId=api_id),
        "update_deployment": lambda c: c.update_deployment(ApiId=api_id, DeploymentId=deployment_id,
                                                          Description="theirs"),
        "delete_deployment": lambda c: c.delete_deployment(ApiId=api_id, DeploymentId=deployment_id),
        "get_stages": lambda c: c.get_stages(ApiId=api_id),
        "get_stage": lambda c: c.get_stage(ApiId=api_id, StageName="prod"),
        "create_stage": lambda c: c.create_stage(ApiId=api_id, StageName="theirs", AutoDeploy=True),
        "update_stage": lambda c: c.update_stage(ApiId=api_id, StageName="prod", AutoDeploy=True),
        "delete_stage": lambda c: c.delete_stage(ApiId=api_id, StageName="prod"),
        "create_route(to A's integration)": lambda c: c.create_route(ApiId=api_id, RouteKey="GET /b",
                                                                    Target=target),
    }
    refused = []
    for what, call in apigw_calls.items():
        with pytest.raises(ClientError) as e:
            call(b_apigw)
        refused.append((what, error_of(e)))
    assert [r for r in refused if r[1] != ("NotFoundException", 404)] == []
    for what, call in apigw_calls.items():
        if what.startswith("get_"):
            call(apigw)

    assert a_state() == before
    # B's own account is unaffected by A's reservation, and sees no aliases of A's.
    b_name = unique("subres-b")
    create_function(b_lam, b_name, {"index.mjs": HELLO_SRC})
    assert b_lam.list_aliases(FunctionName=b_name)["Aliases"] == []
    assert b_lam.get_function_concurrency(FunctionName=b_name).get("ReservedConcurrentExecutions") is None
