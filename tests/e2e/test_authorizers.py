"""Route authorizers of HTTP APIs: JWT authorizers checked against a local OpenID issuer
(discovery document and JWKS served by this test on loopback, tokens signed here with
RS256 and ES256 keys made by `cryptography`), and Lambda (REQUEST) authorizers with simple
and IAM-policy answers, identity sources and result caching.

What AWS documents and this suite asserts ("Control access to HTTP APIs with JWT
authorizers", "Working with AWS Lambda authorizers for HTTP APIs", "Troubleshooting
issues with HTTP API JWT authorizers"): a refused token is 401 {"message":"Unauthorized"}
with a `www-authenticate: Bearer scope=".." error="invalid_token" error_description=".."`
challenge (only the audience's description is AWS's published text; the others are
Portico's), a token without the route's scopes is 403 {"message":"Forbidden"}, claims and
scopes reach the integration in requestContext.authorizer.jwt; a Lambda authorizer that
denies is 403, one whose identity source is missing is 401 without being invoked, and its
context reaches the integration in requestContext.authorizer.lambda.

Lambda authorizers report each invocation to the suite's loopback recorder, so the
invocations (and what the cache saved) are counted from outside the sandbox."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import (
    ACCOUNT, REGION, Server, allow_api, boto_client, create_function, curl, error_of, stop_and_check, unique,
)

AUDIENCE = "portico-tests"

ECHO = """
export const handler = async (event) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ authorizer: event.requestContext.authorizer ?? null, routeKey: event.routeKey }),
});
"""

# Decides by the token in the `x-token` header: `{simple|policy}:{allow|deny}:{anything}`.
# Reports every invocation (tagged with the token) to the recorder first.
AUTHORIZER = """
import http from "node:http";
const report = (body) => new Promise((resolve) => {
  const req = http.request(process.env.RECORDER, { method: "POST" }, (res) => { res.resume(); res.on("end", resolve); });
  req.on("error", resolve);
  req.end(JSON.stringify(body));
});
export const handler = async (event) => {
  const token = event.headers["x-token"] ?? "";
  await report({ tag: token, event });
  if (token.includes(":fail:")) throw new Error("failing on purpose");
  const [style, verdict] = token.split(":");
  const context = { user: token, n: 7, list: ["a", "b"] };
  if (style === "simple") return { isAuthorized: verdict === "allow", context };
  return {
    principalId: "user-" + token,
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: verdict === "allow" ? "Allow" : "Deny", Resource: event.routeArn }],
    },
    context,
  };
};
"""


# --- a local OpenID issuer -----------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """A signing key of the issuer: RS256 (RSA 2048) or ES256 (P-256)."""

    def __init__(self, alg: str, kid: str):
        self.alg, self.kid = alg, kid
        self.private = rsa.generate_private_key(65537, 2048) if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict:
        numbers = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
            return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64url(n),
                    "e": b64url(numbers.e.to_bytes(3, "big"))}
        return {"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": self.kid,
                "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}

    def sign(self, claims: dict, kid: str | None = None) -> str:
        header = {"alg": self.alg, "typ": "JWT", "kid": kid or self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
        if self.alg == "RS256":
            signature = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input.decode()}.{b64url(signature)}"


class Issuer:
    """`{url}/.well-known/openid-configuration` and `{url}/jwks.json` on loopback; over
    https when given a server-side `tls` context."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.keys = [Key("RS256", "rsa-1"), Key("ES256", "ec-1")]
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    doc = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
                elif self.path == "/jwks.json":
                    issuer.jwks_fetches += 1
                    doc = {"keys": [k.jwk() for k in issuer.keys]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300,
                  "groups": ["admins", "users"], "email_verified": True}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, key: Key | None = None, **overrides) -> str:
        return (key or self.keys[0]).sign(self.claims(**overrides))


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    yield i
    i.httpd.shutdown()


@pytest.fixture(scope="module")
def echo(lam):
    return create_function(lam, unique("authz-echo"), {"index.mjs": ECHO})["FunctionArn"]


def new_api(apigw, lam, echo) -> tuple[str, str]:
    """An API with an echo integration (payload 2.0) and a `$default` stage that
    redeploys on every change; (api id, integration id)."""
    api_id = apigw.create_api(Name=unique("authz"), ProtocolType="HTTP")["ApiId"]
    allow_api(lam, echo.rsplit(":", 1)[1], api_id)
    iid = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=echo,
                                   PayloadFormatVersion="2.0")["IntegrationId"]
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return api_id, iid


def call(server, api_id: str, path: str, headers: dict[str, str] | None = None):
    return curl(server.path_url(api_id, path), headers=headers)


# --- JWT authorizers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jwt_api(apigw, lam, echo, issuer):
    api_id, iid = new_api(apigw, lam, echo)
    auth = apigw.create_authorizer(
        ApiId=api_id, AuthorizerType="JWT", Name="local-issuer", IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Issuer": issuer.url, "Audience": [AUDIENCE, "another-client"]},
    )
    target = f"integrations/{iid}"
    apigw.create_route(ApiId=api_id, RouteKey="GET /open", Target=target)
    apigw.create_route(ApiId=api_id, RouteKey="GET /jwt", Target=target, AuthorizationType="JWT",
                       AuthorizerId=auth["AuthorizerId"])
    apigw.create_route(ApiId=api_id, RouteKey="GET /scoped", Target=target, AuthorizationType="JWT",
                       AuthorizerId=auth["AuthorizerId"], AuthorizationScopes=["pets:read", "pets:admin"])
    return api_id, auth


def test_jwt_authorizer_is_described_as_created(apigw, jwt_api, issuer):
    api_id, auth = jwt_api
    assert auth["AuthorizerType"] == "JWT"
    assert auth["IdentitySource"] == ["$request.header.Authorization"]
    assert auth["JwtConfiguration"] == {"Issuer": issuer.url, "Audience": [AUDIENCE, "another-client"]}
    got = apigw.get_authorizer(ApiId=api_id, AuthorizerId=auth["AuthorizerId"])
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == \
        {k: v for k, v in auth.items() if k != "ResponseMetadata"}
    assert [a["AuthorizerId"] for a in apigw.get_authorizers(ApiId=api_id)["Items"]] == [auth["AuthorizerId"]]
    routes = {r["RouteKey"]: r for r in apigw.get_routes(ApiId=api_id)["Items"]}
    assert routes["GET /scoped"]["AuthorizationType"] == "JWT"
    assert routes["GET /scoped"]["AuthorizerId"] == auth["AuthorizerId"]
    assert routes["GET /scoped"]["AuthorizationScopes"] == ["pets:read", "pets:admin"]
    assert routes["GET /open"]["AuthorizationType"] == "NONE" and "AuthorizerId" not in routes["GET /open"]


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_valid_token_reaches_the_function_with_its_claims(server, jwt_api, issuer, alg):
    api_id, _ = jwt_api
    key = next(k for k in issuer.keys if k.alg == alg)
    claims = issuer.claims()
    token = key.sign(claims)
    for value in (f"Bearer {token}", token):  # the Bearer prefix is optional
        r = call(server, api_id, "/jwt", {"Authorization": value})
        assert r.status == 200, (r.status, r.text, r.headers)
        jwt = r.json()["authorizer"]["jwt"]
        # Claims arrive as strings: numbers in JSON form, lists as Go prints them.
        assert jwt["claims"] == {
            "iss": issuer.url, "aud": AUDIENCE, "sub": "user-1", "iat": str(claims["iat"]), "exp": str(claims["exp"]),
            "groups": "[admins users]", "email_verified": "true",
        }
        # A route without scopes gets `scopes: null`, as AWS sends it.
        assert jwt["scopes"] is None
    # A route without an authorizer needs no token.
    assert call(server, api_id, "/open").status == 200


def test_client_id_stands_for_a_missing_audience(server, jwt_api, issuer):
    api_id, _ = jwt_api
    token = issuer.token(aud=None, client_id="another-client")
    assert call(server, api_id, "/jwt", {"Authorization": token}).status == 200


def challenge(description: str, scope: str = "") -> str:
    return f'Bearer scope="{scope}" error="invalid_token" error_description="{description}"'


def test_refused_tokens_get_401_and_a_challenge(server, jwt_api, issuer):
    api_id, _ = jwt_api
    rsa_key = issuer.keys[0]
    stranger = Key("RS256", rsa_key.kid)  # not the issuer's key, but claims its kid
    now = int(time.time())
    cases = {
        "expired": (issuer.token(exp=now - 10, iat=now - 600), challenge("the token has expired")),
        "wrong audience": (issuer.token(aud="someone-else"),
                           challenge("the token does not have a valid audience")),  # AWS's published text
        "wrong issuer": (issuer.token(iss="http://127.0.0.1:1/not-the-issuer"), challenge("issuer does not match")),
        "wrong signature": (stranger.sign(issuer.claims()), challenge("signature is invalid")),
        "not yet valid": (issuer.token(nbf=now + 600), challenge("the token is not valid yet")),
        "not a JWT": ("abc", challenge("token contains an invalid number of segments")),
    }
    for name, (token, expected) in cases.items():
        r = call(server, api_id, "/jwt", {"Authorization": f"Bearer {token}"})
        assert (r.status, r.json()) == (401, {"message": "Unauthorized"}), name
        assert r.headers.get("www-authenticate") == expected, name
        assert "apigw-requestid" in r.headers
    # No token at all.
    r = call(server, api_id, "/jwt")
    assert (r.status, r.json()) == (401, {"message": "Unauthorized"})
    assert r.headers.get("www-authenticate") == 'Bearer scope="" error="missing" error_description="token not provided"'


def test_es256_tokens_are_refused_exactly_like_rs256_ones(server, jwt_api, issuer):
    """Expired, wrongly signed and tampered tokens get the same 401, body and challenge
    whichever algorithm signed them; an ES256 signature must be JWS's raw r||s (64
    bytes), so the same signature in DER form, as some libraries emit it, is refused."""
    api_id, _ = jwt_api
    now = int(time.time())
    answers = {}
    for alg in ("RS256", "ES256"):
        key = next(k for k in issuer.keys if k.alg == alg)
        stranger = Key(alg, key.kid)  # not the issuer's key, but claims its kid
        good = key.sign(issuer.claims())
        other_claims = b64url(json.dumps(issuer.claims(sub="admin")).encode())
        head, _, signature = good.split(".")
        cases = {
            "expired": key.sign(issuer.claims(exp=now - 10, iat=now - 600)),
            "expired and wrongly signed": stranger.sign(issuer.claims(exp=now - 10, iat=now - 600)),
            "wrong signature": stranger.sign(issuer.claims()),
            "claims changed after signing": f"{head}.{other_claims}.{signature}",
            # Whole base64 groups only: a cut inside one leaves random padding bits, which
            # a strict decoder refuses as malformed before looking at the signature.
            "signature cut short": f"{head}.{good.split('.')[1]}.{signature[:len(signature) // 4 * 4 - 4]}",
            "no signature": f"{head}.{good.split('.')[1]}.",
        }
        assert call(server, api_id, "/jwt", {"Authorization": f"Bearer {good}"}).status == 200, alg
        for name, token in cases.items():
            r = call(server, api_id, "/jwt", {"Authorization": f"Bearer {token}"})
            answers[(alg, name)] = (r.status, r.json(), r.headers.get("www-authenticate"))
    for name in cases:
        assert answers[("ES256", name)] == answers[("RS256", name)], name
        status, body, _ = answers[("ES256", name)]
        assert (status, body) == (401, {"message": "Unauthorized"}), name
    assert answers[("ES256", "expired")][2] == challenge("the token has expired")
    assert answers[("ES256", "wrong signature")][2] == challenge("signature is invalid")
    assert answers[("ES256", "claims changed after signing")][2] == challenge("signature is invalid")
    assert answers[("ES256", "signature cut short")][2] == challenge("signature is invalid")
    # A wrong signature is found before the expiry is looked at, as for RS256.
    assert answers[("ES256", "expired and wrongly signed")][2] == challenge("signature is invalid")

    # The issuer's own ES256 signature, DER-encoded instead of r||s.
    ec_key = next(k for k in issuer.keys if k.alg == "ES256")
    header = {"alg": "ES256", "typ": "JWT", "kid": ec_key.kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(issuer.claims()).encode())}"
    der = ec_key.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r = call(server, api_id, "/jwt", {"Authorization": f"Bearer {signing_input}.{b64url(der)}"})
    assert (r.status, r.json()) == (401, {"message": "Unauthorized"})
    assert r.headers.get("www-authenticate") == challenge("signature is invalid")


def test_route_scopes(server, jwt_api, issuer):
    api_id, _ = jwt_api
    # One of the route's scopes is enough; the function sees all of the token's.
    r = call(server, api_id, "/scoped", {"Authorization": issuer.token(scope="pets:read openid")})
    assert r.status == 200, r.text
    assert r.json()["authorizer"]["jwt"]["scopes"] == ["pets:read", "openid"]
    # `scp` (a list) counts as well.
    assert call(server, api_id, "/scoped", {"Authorization": issuer.token(scp=["pets:admin"])}).status == 200
    for token in (issuer.token(scope="openid"), issuer.token()):
        r = call(server, api_id, "/scoped", {"Authorization": token})
        assert (r.status, r.json()) == (403, {"message": "Forbidden"})
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert r.headers["www-authenticate"].startswith('Bearer scope="pets:read pets:admin"')
    # An invalid token is 401 first, whatever its scopes.
    r = call(server, api_id, "/scoped", {"Authorization": issuer.token(scope="pets:read", aud="x")})
    assert r.status == 401
    assert r.headers["www-authenticate"] == \
        challenge("the token does not have a valid audience", "pets:read pets:admin")


def test_a_rotated_key_is_picked_up(server, jwt_api, issuer):
    api_id, _ = jwt_api
    assert call(server, api_id, "/jwt", {"Authorization": issuer.token()}).status == 200
    new = Key("RS256", unique("rsa"))
    issuer.keys.append(new)
    time.sleep(1.1)  # Portico asks an issuer again at most once a second
    fetches = issuer.jwks_fetches
    r = call(server, api_id, "/jwt", {"Authorization": issuer.token(new)})
    assert r.status == 200, (r.text, r.headers)
    assert issuer.jwks_fetches == fetches + 1
    # Known keys need no fetch; a burst of unknown ones costs the issuer one at most.
    time.sleep(1.1)
    fetches = issuer.jwks_fetches
    for _ in range(5):
        assert call(server, api_id, "/jwt", {"Authorization": issuer.token(new)}).status == 200
    unknown = Key("RS256", unique("nobody"))
    for _ in range(5):
        r = call(server, api_id, "/jwt", {"Authorization": issuer.token(unknown)})
        assert r.status == 401
        assert r.headers["www-authenticate"] == challenge("no key of the issuer matches the token's kid")
    assert issuer.jwks_fetches - fetches <= 1


def test_a_token_in_the_query_string(server, apigw, lam, echo, issuer):
    api_id, iid = new_api(apigw, lam, echo)
    auth = apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="q",
                                   IdentitySource=["$request.querystring.access_token"],
                                   JwtConfiguration={"Issuer": issuer.url, "Audience": [AUDIENCE]})
    apigw.create_route(ApiId=api_id, RouteKey="GET /q", Target=f"integrations/{iid}", AuthorizationType="JWT",
                       AuthorizerId=auth["AuthorizerId"])
    assert call(server, api_id, f"/q?access_token={issuer.token()}").status == 200
    assert call(server, api_id, "/q", {"Authorization": issuer.token()}).status == 401


def test_a_stage_serves_the_authorization_of_its_deployment(server, apigw, lam, echo, issuer):
    api_id, iid = new_api(apigw, lam, echo)
    apigw.create_stage(ApiId=api_id, StageName="manual")
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /r", Target=f"integrations/{iid}")
    apigw.create_deployment(ApiId=api_id, StageName="manual")
    auth = apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="later",
                                   IdentitySource=["$request.header.Authorization"],
                                   JwtConfiguration={"Issuer": issuer.url, "Audience": [AUDIENCE]})
    apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], AuthorizationType="JWT",
                       AuthorizerId=auth["AuthorizerId"])
    # $default redeploys itself; `manual` serves what was deployed, until deployed again.
    assert call(server, api_id, "/r").status == 401
    assert call(server, api_id, "/manual/r").status == 200
    apigw.create_deployment(ApiId=api_id, StageName="manual")
    assert call(server, api_id, "/manual/r").status == 401
    assert call(server, api_id, "/manual/r", {"Authorization": issuer.token()}).status == 200


def test_authorizer_validation(apigw, lam, echo, issuer):
    api_id, iid = new_api(apigw, lam, echo)
    target = f"integrations/{iid}"
    jwt = apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="j",
                                  IdentitySource=["$request.header.Authorization"],
                                  JwtConfiguration={"Issuer": issuer.url, "Audience": [AUDIENCE]})["AuthorizerId"]
    bad_requests = [
        # A JWT route needs a JWT authorizer of the API (AWS's message).
        lambda: apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=target, AuthorizationType="JWT"),
        lambda: apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=target, AuthorizationType="JWT",
                                   AuthorizerId="nosuch1"),
        lambda: apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=target, AuthorizationType="CUSTOM",
                                   AuthorizerId=jwt),
        lambda: apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=target, AuthorizationScopes=["x"]),
        lambda: apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="n", IdentitySource=["x"],
                                        JwtConfiguration={"Issuer": issuer.url}),
        lambda: apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="n",
                                        IdentitySource=["$request.header.Authorization"]),
        lambda: apigw.create_authorizer(ApiId=api_id, AuthorizerType="REQUEST", Name="n",
                                        IdentitySource=["$request.header.x"], AuthorizerPayloadFormatVersion="2.0"),
        lambda: apigw.create_authorizer(ApiId=api_id, AuthorizerType="REQUEST", Name="n", IdentitySource=[],
                                        AuthorizerUri=echo, AuthorizerPayloadFormatVersion="2.0",
                                        AuthorizerResultTtlInSeconds=60),
        lambda: apigw.create_authorizer(ApiId=api_id, AuthorizerType="REQUEST", Name="n",
                                        IdentitySource=["$request.header.x"], AuthorizerUri=echo,
                                        AuthorizerPayloadFormatVersion="1.0", EnableSimpleResponses=True),
    ]
    for i, attempt in enumerate(bad_requests):
        with pytest.raises(ClientError) as e:
            attempt()
        assert error_of(e) == ("BadRequestException", 400), i
    with pytest.raises(ClientError) as e:
        apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=target, AuthorizationType="JWT")
    assert e.value.response["Error"]["Message"] == \
        "Invalid authorizer ID specified. Setting the authorization type to JWT requires a valid JWT authorizer."

    # An authorizer a route uses cannot be deleted; an unused one can.
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /a", Target=target, AuthorizationType="JWT",
                               AuthorizerId=jwt, AuthorizationScopes=["s"])
    with pytest.raises(ClientError) as e:
        apigw.delete_authorizer(ApiId=api_id, AuthorizerId=jwt)
    assert error_of(e) == ("ConflictException", 409)
    updated = apigw.update_authorizer(ApiId=api_id, AuthorizerId=jwt, Name="renamed",
                                      JwtConfiguration={"Audience": ["other"]})
    assert updated["Name"] == "renamed"
    assert updated["JwtConfiguration"] == {"Issuer": issuer.url, "Audience": ["other"]}
    # Back to NONE: the route drops its authorizer and scopes, and the authorizer can go.
    r = apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], AuthorizationType="NONE")
    assert r["AuthorizationType"] == "NONE" and "AuthorizerId" not in r and "AuthorizationScopes" not in r
    apigw.delete_authorizer(ApiId=api_id, AuthorizerId=jwt)
    with pytest.raises(ClientError) as e:
        apigw.get_authorizer(ApiId=api_id, AuthorizerId=jwt)
    assert error_of(e) == ("NotFoundException", 404)


def test_authorizers_survive_a_restart(tmp_path, issuer):
    data_dir = tmp_path / "data"
    first = Server(data_dir, tmp_path / "first.log").start()
    try:
        lam, apigw = boto_client(first.endpoint, "lambda"), boto_client(first.endpoint, "apigatewayv2")
        echo = create_function(lam, unique("authz-echo"), {"index.mjs": ECHO})["FunctionArn"]
        api_id, iid = new_api(apigw, lam, echo)
        auth = apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="kept",
                                       IdentitySource=["$request.header.Authorization"],
                                       JwtConfiguration={"Issuer": issuer.url, "Audience": [AUDIENCE]})
        apigw.create_route(ApiId=api_id, RouteKey="GET /jwt", Target=f"integrations/{iid}",
                           AuthorizationType="JWT", AuthorizerId=auth["AuthorizerId"])
        assert call(first, api_id, "/jwt").status == 401
        stop_and_check(first)
    finally:
        first.kill()
    second = Server(data_dir, tmp_path / "second.log").start()
    try:
        apigw = boto_client(second.endpoint, "apigatewayv2")
        assert apigw.get_authorizer(ApiId=api_id, AuthorizerId=auth["AuthorizerId"])["Name"] == "kept"
        assert call(second, api_id, "/jwt").status == 401
        r = call(second, api_id, "/jwt", {"Authorization": issuer.token()})
        assert r.status == 200, (r.text, second.log_tail())
        stop_and_check(second)
    finally:
        second.kill()


# --- an issuer over https ----------------------------------------------------------------------


def make_ca_and_server_cert(directory) -> tuple:
    """A self-signed CA and a server certificate it issued for 127.0.0.1; the CA's PEM
    file and a server-side TLS context presenting the server certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Portico test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_pem, key_pem)
    return ca_pem, tls


@pytest.fixture(scope="module")
def https_issuer(tmp_path_factory):
    ca_pem, tls = make_ca_and_server_cert(tmp_path_factory.mktemp("issuer-tls"))
    i = Issuer(tls)
    i.ca_pem = ca_pem
    yield i
    i.httpd.shutdown()


def jwt_route(apigw, lam, echo, issuer) -> str:
    """An API whose `GET /jwt` has a JWT authorizer of `issuer`; its id."""
    api_id, iid = new_api(apigw, lam, echo)
    auth = apigw.create_authorizer(ApiId=api_id, AuthorizerType="JWT", Name="https-issuer",
                                   IdentitySource=["$request.header.Authorization"],
                                   JwtConfiguration={"Issuer": issuer.url, "Audience": [AUDIENCE]})
    apigw.create_route(ApiId=api_id, RouteKey="GET /jwt", Target=f"integrations/{iid}", AuthorizationType="JWT",
                       AuthorizerId=auth["AuthorizerId"])
    return api_id


def test_an_https_issuer_trusted_through_extra_ca_certs(tmp_path, https_issuer):
    s = Server(tmp_path / "data", tmp_path / "portico.log", ("--extra-ca-certs", str(https_issuer.ca_pem))).start()
    try:
        lam, apigw = boto_client(s.endpoint, "lambda"), boto_client(s.endpoint, "apigatewayv2")
        echo = create_function(lam, unique("authz-echo"), {"index.mjs": ECHO})["FunctionArn"]
        api_id = jwt_route(apigw, lam, echo, https_issuer)
        token = https_issuer.token()
        r = call(s, api_id, "/jwt", {"Authorization": f"Bearer {token}"})
        assert r.status == 200, (r.status, r.text, s.log_tail())
        assert r.json()["authorizer"]["jwt"]["claims"]["iss"] == https_issuer.url
        assert https_issuer.jwks_fetches >= 1
        # A bad signature is still refused over https.
        stranger = Key("RS256", https_issuer.keys[0].kid)
        assert call(s, api_id, "/jwt", {"Authorization": stranger.sign(https_issuer.claims())}).status == 401
        assert "JWT authorizers also trust the CA certificates of" in s.log_path.read_text(errors="replace")
        stop_and_check(s)
    finally:
        s.kill()


def test_an_https_issuer_whose_ca_is_not_trusted_is_refused(server, apigw, lam, echo, https_issuer):
    api_id = jwt_route(apigw, lam, echo, https_issuer)
    r = call(server, api_id, "/jwt", {"Authorization": https_issuer.token()})
    assert (r.status, r.json()) == (401, {"message": "Unauthorized"})
    assert r.headers["www-authenticate"] == challenge("the issuer's signing keys could not be fetched")
    deadline = time.monotonic() + 5
    while True:
        lines = [l for l in server.log_path.read_text(errors="replace").splitlines()
                 if https_issuer.url in l and "the issuer's certificate is not trusted" in l]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert lines, server.log_tail()


def test_an_unusable_extra_ca_certs_file_stops_the_start(tmp_path):
    bad = tmp_path / "not-pem.txt"
    bad.write_text("hello\n")
    s = Server(tmp_path / "data", tmp_path / "portico.log", ("--extra-ca-certs", str(bad)))
    with pytest.raises(AssertionError):
        s.start(timeout=15)
    log = s.log_path.read_text(errors="replace")
    assert "--extra-ca-certs" in log and "no PEM certificate" in log, log


# --- Lambda authorizers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lambda_api(apigw, lam, echo, recorder):
    """Routes guarded by one authorizer function through four authorizers: simple answers
    (`/simple`), IAM policies (`/policy`), cached simple answers (`/cached`, TTL 2 s) and
    one the function's resource policy does not cover (`/unpermitted`)."""
    api_id, iid = new_api(apigw, lam, echo)
    name = unique("authz-fn")
    fn = create_function(lam, name, {"index.mjs": AUTHORIZER},
                         Environment={"Variables": {"RECORDER": recorder.url}})["FunctionArn"]
    uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{fn}/invocations"
    common = dict(ApiId=api_id, AuthorizerType="REQUEST", IdentitySource=["$request.header.x-token"],
                  AuthorizerPayloadFormatVersion="2.0")
    ids = {
        "simple": apigw.create_authorizer(Name="simple", AuthorizerUri=uri, EnableSimpleResponses=True,
                                          **common)["AuthorizerId"],
        "policy": apigw.create_authorizer(Name="policy", AuthorizerUri=fn, **common)["AuthorizerId"],
        "cached": apigw.create_authorizer(Name="cached", AuthorizerUri=uri, EnableSimpleResponses=True,
                                          AuthorizerResultTtlInSeconds=2, **common)["AuthorizerId"],
        "unpermitted": apigw.create_authorizer(Name="unpermitted", AuthorizerUri=uri, EnableSimpleResponses=True,
                                               **common)["AuthorizerId"],
    }
    for route, auth_id in ids.items():
        apigw.create_route(ApiId=api_id, RouteKey=f"GET /{route}", Target=f"integrations/{iid}",
                           AuthorizationType="CUSTOM", AuthorizerId=auth_id)
    # The permission names each authorizer, as `aws lambda add-permission --source-arn
    # arn:aws:execute-api:{region}:{account}:{api}/authorizers/{id}` does in AWS's guide.
    for route in ("simple", "policy", "cached"):
        lam.add_permission(FunctionName=name, StatementId=unique("authz"), Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/authorizers/{ids[route]}")
    return api_id, ids


def test_request_authorizer_is_described_as_created(apigw, lambda_api):
    api_id, ids = lambda_api
    a = apigw.get_authorizer(ApiId=api_id, AuthorizerId=ids["cached"])
    assert a["AuthorizerType"] == "REQUEST"
    assert a["AuthorizerPayloadFormatVersion"] == "2.0"
    assert a["AuthorizerResultTtlInSeconds"] == 2
    assert a["EnableSimpleResponses"] is True
    assert a["IdentitySource"] == ["$request.header.x-token"]
    assert a["AuthorizerUri"].startswith(f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/")


def test_simple_responses_allow_and_deny(server, lambda_api, recorder):
    api_id, _ = lambda_api
    token = f"simple:allow:{unique('t')}"
    r = call(server, api_id, "/simple", {"x-token": token})
    assert r.status == 200, r.text
    # The authorizer's context reaches the integration as AWS's 2.0 event carries it.
    assert r.json()["authorizer"] == {"lambda": {"user": token, "n": 7, "list": ["a", "b"]}}
    [seen] = recorder.tagged(token)
    event = seen["event"]
    assert event["version"] == "2.0" and event["type"] == "REQUEST"
    assert event["routeArn"] == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/$default/GET/simple"
    assert event["identitySource"] == [token]
    assert event["routeKey"] == "GET /simple"
    assert event["requestContext"]["apiId"] == api_id and "body" not in event

    token = f"simple:deny:{unique('t')}"
    r = call(server, api_id, "/simple", {"x-token": token})
    assert (r.status, r.json()) == (403, {"message": "Forbidden"})
    assert len(recorder.tagged(token)) == 1


def test_iam_policy_responses_allow_and_deny(server, lambda_api):
    api_id, _ = lambda_api
    token = f"policy:allow:{unique('t')}"
    r = call(server, api_id, "/policy", {"x-token": token})
    assert r.status == 200, r.text
    assert r.json()["authorizer"] == {"lambda": {"user": token, "n": 7, "list": ["a", "b"]}}
    r = call(server, api_id, "/policy", {"x-token": f"policy:deny:{unique('t')}"})
    assert (r.status, r.json()) == (403, {"message": "Forbidden"})
    # A simple answer where a policy is expected is malformed: 500.
    r = call(server, api_id, "/policy", {"x-token": f"simple:allow:{unique('t')}"})
    assert (r.status, r.json()) == (500, {"message": "Internal Server Error"})


def test_a_missing_identity_source_is_401_without_invoking(server, lambda_api, recorder):
    api_id, _ = lambda_api
    before = len(recorder.posts)
    for headers in (None, {"x-token": ""}, {"x-other": "simple:allow:x"}):
        r = call(server, api_id, "/simple", headers)
        assert (r.status, r.json()) == (401, {"message": "Unauthorized"})
    time.sleep(0.3)
    assert len(recorder.posts) == before


def test_answers_are_cached_by_identity_within_the_ttl(server, lambda_api, recorder):
    api_id, _ = lambda_api
    token = f"simple:allow:{unique('t')}"
    for _ in range(3):
        assert call(server, api_id, "/cached", {"x-token": token}).status == 200
    assert len(recorder.tagged(token)) == 1
    # Another identity is another cache entry.
    other = f"simple:allow:{unique('t')}"
    assert call(server, api_id, "/cached", {"x-token": other}).status == 200
    assert len(recorder.tagged(other)) == 1
    # A denial is cached as well.
    denied = f"simple:deny:{unique('t')}"
    for _ in range(2):
        assert call(server, api_id, "/cached", {"x-token": denied}).status == 403
    assert len(recorder.tagged(denied)) == 1
    # Past the TTL the function is asked again.
    time.sleep(2.2)
    assert call(server, api_id, "/cached", {"x-token": token}).status == 200
    assert len(recorder.tagged(token)) == 2
    # Without a TTL every request asks.
    uncached = f"simple:allow:{unique('t')}"
    for _ in range(2):
        assert call(server, api_id, "/simple", {"x-token": uncached}).status == 200
    assert len(recorder.tagged(uncached)) == 2


def test_authorizer_failures_are_500(server, lambda_api, recorder):
    api_id, _ = lambda_api
    r = call(server, api_id, "/simple", {"x-token": f"simple:fail:{unique('t')}"})
    assert (r.status, r.json()) == (500, {"message": "Internal Server Error"})
    # The function's resource policy does not name this authorizer: never invoked.
    token = f"simple:allow:{unique('t')}"
    r = call(server, api_id, "/unpermitted", {"x-token": token})
    assert (r.status, r.json()) == (500, {"message": "Internal Server Error"})
    assert recorder.tagged(token) == []
