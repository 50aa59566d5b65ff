"""No secret reaches the server's output, even at debug level.

A `portico serve` with PORTICO_LOG=debug (every crate's debug events, hyper's included)
is driven through everything that carries a credential: calls signed by boto3 and the
AWS CLI, a call signed with a wrong secret (refused), a presigned URL, a `portico keys
create` while it runs, JWT routes (token in the Authorization header and in the query
string; valid, expired and wrongly signed tokens), and an AWS_IAM route (signed and
wrongly signed). Then neither its stdout nor its stderr may contain a secret access key,
a SigV4 signature (header or `X-Amz-Signature=`) or any part of a JWT but its header.
"""

from __future__ import annotations

import os
import re
import stat
import time

import pytest
from botocore.exceptions import ClientError

import conftest
from conftest import (
    ACCOUNT, Server, allow_api, boto_client, create_function, curl, keys_create, run_aws, sign_headers,
    stop_and_check, unique,
)
from test_authorizers import AUDIENCE, Issuer, Key

OTHER_ACCOUNT = "444455556666"
ECHO = """
export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ ok: true }),
});
"""


def debug_server(tmp_path, monkeypatch, level: str) -> Server:
    """A server started with PORTICO_LOG=`level`. `Server.start` drops the caller's PORTICO_*
    variables (a test must not inherit a developer's), so a wrapper sets it."""
    wrapper = tmp_path / "portico-debug"
    wrapper.write_text(f'#!/bin/sh\nPORTICO_LOG={level} exec "{conftest.PORTICO_BIN}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    with monkeypatch.context() as m:
        m.setattr(conftest, "PORTICO_BIN", wrapper)
        return Server(tmp_path / "data", tmp_path / "portico.log").start()


class Signatures:
    """Every SigV4 signature the boto3 clients it watches send."""

    def __init__(self):
        self.seen: set[str] = set()

    def watch(self, client):
        client.meta.events.register("before-send", self._record)
        return client

    def _record(self, request, **_):
        self.add_from(request.headers.get("Authorization", b""))
        self.add_from(request.url)

    def add_from(self, text):
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        self.seen.update(re.findall(r"Signature=([0-9a-f]{64})", text))


@pytest.mark.parametrize("level", ["debug", "trace"])
def test_no_secret_reaches_the_servers_output(tmp_path, monkeypatch, level):
    issuer = Issuer()
    s = debug_server(tmp_path, monkeypatch, level)
    try:
        akid, secret = s.credentials
        secrets = {secret}
        sigs = Signatures()
        lam = sigs.watch(boto_client(s.endpoint, "lambda"))
        apigw = sigs.watch(boto_client(s.endpoint, "apigatewayv2"))
        sts = sigs.watch(boto_client(s.endpoint, "sts"))

        # Signed calls: boto3 and the CLI.
        assert sts.get_caller_identity()["Account"] == ACCOUNT
        res = run_aws(s.endpoint, "lambda", "list-functions")
        assert res.rc == 0, res.err
        fn = create_function(lam, unique("secret-echo"), {"index.mjs": ECHO})
        # A key made while it runs; B's calls signed with it.
        b_akid, b_secret = keys_create(s.data_dir, OTHER_ACCOUNT)
        secrets.add(b_secret)
        b_sts = sigs.watch(boto_client(s.endpoint, "sts", credentials=(b_akid, b_secret)))
        assert b_sts.get_caller_identity()["Account"] == OTHER_ACCOUNT
        # Refused: a wrong secret (its signature is sent, the secret never is).
        # (A secret that starts with "x" must still get a different first character.)
        wrong = ("y" if secret.startswith("x") else "x") + secret[1:]
        secrets.add(wrong)
        with pytest.raises(ClientError):
            sigs.watch(boto_client(s.endpoint, "lambda", credentials=(akid, wrong))).list_functions()
        with pytest.raises(ClientError):
            sigs.watch(boto_client(s.endpoint, "sts", credentials=(akid, wrong))).get_caller_identity()
        # Presigned: good and tampered.
        url = sts.generate_presigned_url("get_caller_identity", HttpMethod="GET")
        sigs.add_from(url)
        assert curl(url).status == 200
        assert curl(url.replace("Version=2011-06-15", "Version=2011-06-16")).status == 403
        fn_url = lam.generate_presigned_url("get_function", Params={"FunctionName": fn["FunctionName"]})
        sigs.add_from(fn_url)
        assert curl(fn_url).status == 200

        # JWT routes (header and query string) and an AWS_IAM route on one API.
        api_id = apigw.create_api(Name=unique("secrets"), ProtocolType="HTTP")["ApiId"]
        allow_api(lam, fn["FunctionName"], api_id)
        iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
                                       PayloadFormatVersion="2.0")["IntegrationId"]
        apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        jwt_config = {"Issuer": issuer.url, "Audience": [AUDIENCE]}
        by_header = apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="h", JwtConfiguration=jwt_config,
                                            IdentitySource=["$request.header.Authorization"])["AuthorizerId"]
        by_query = apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="q", JwtConfiguration=jwt_config,
                                           IdentitySource=["$request.querystring.access_token"])["AuthorizerId"]
        target = f"integrations/{iid}"
        apigw.create_route(ApiId=api_id, RouteKey="GET /jwt", Target=target, AuthorizationType="JWT",
                           AuthorizerId=by_header)
        apigw.create_route(ApiId=api_id, RouteKey="GET /q", Target=target, AuthorizationType="JWT",
                           AuthorizerId=by_query)
        apigw.create_route(ApiId=api_id, RouteKey="GET /iam", Target=target, AuthorizationType="AWS_IAM")

        now = int(time.time())
        rsa_key, ec_key = issuer.keys
        stranger = Key("RS256", rsa_key.kid)
        tokens = {
            "good RS256": (rsa_key.sign(issuer.claims()), 200),
            "good ES256": (ec_key.sign(issuer.claims()), 200),
            "expired": (rsa_key.sign(issuer.claims(exp=now - 10, iat=now - 600)), 401),
            "wrong signature": (stranger.sign(issuer.claims()), 401),
            "wrong audience": (rsa_key.sign(issuer.claims(aud="someone-else")), 401),
        }
        for name, (token, status) in tokens.items():
            r = curl(s.path_url(api_id, "/jwt"), headers={"Authorization": f"Bearer {token}"})
            assert r.status == status, (name, r.status, r.text)
            r = curl(s.path_url(api_id, f"/q?access_token={token}"))
            assert r.status == status, (name, r.status, r.text)

        iam_url = s.path_url(api_id, "/iam")
        signed = sign_headers(iam_url, "execute-api", credentials=(akid, secret))
        sigs.add_from(signed["Authorization"])
        assert curl(iam_url, headers=signed).status == 200
        bad = sign_headers(iam_url, "execute-api", credentials=(akid, wrong))
        sigs.add_from(bad["Authorization"])
        assert curl(iam_url, headers=bad).status == 403
        # A refused control-plane call signed by hand, so debug logs a refusal.
        h = sign_headers(f"{s.endpoint}/2015-03-31/functions/", "lambda", credentials=(akid, wrong))
        sigs.add_from(h["Authorization"])
        assert curl(f"{s.endpoint}/2015-03-31/functions/", headers=h).status == 403

        stop_and_check(s)
    finally:
        s.kill()
        issuer.httpd.shutdown()

    stdout = "\n".join(s.stdout_lines)
    stderr = s.log_path.read_text(errors="replace")
    # Debug level was on (a refusal is a debug event), and the output is not empty.
    assert "refused a call" in stderr and "DEBUG" in stderr, stderr[-2000:]
    assert level != "trace" or "TRACE" in stderr, stderr[-2000:]
    assert len(sigs.seen) >= 10, sigs.seen
    for where, text in (("stdout", stdout), ("stderr", stderr)):
        for value in secrets:
            assert value not in text, f"a secret access key in the server's {where}"
        for sig in sigs.seen:
            assert sig not in text, f"a SigV4 signature in the server's {where}"
        assert not re.search(r"(?i)x-amz-signature=[0-9a-f]", text), f"X-Amz-Signature= in the server's {where}"
        assert not re.search(r"Signature=[0-9a-f]{16}", text), f"Signature= in the server's {where}"
        for name, (token, _) in tokens.items():
            _header, payload, signature = token.split(".")
            # The header (alg, typ, kid) is no secret; claims and signature are.
            assert payload not in text and signature not in text, f"the {name} JWT in the server's {where}"
    # The key file stays private.
    assert stat.S_IMODE(os.stat(s.data_dir / "credentials").st_mode) == 0o600
