"""Access logs of HTTP API stages: a stage's AccessLogSettings (DestinationArn, Format) make
one line per request, `$context` variables substituted, in the CloudWatch Logs group the ARN
names, read back with boto3's logs client. Answers the gateway gives itself (404, 429, 502)
are logged with `$context.error.message`; a stage without settings logs nothing; a format
without `$context.requestId` is refused as API Gateway refuses it; lines for a group that does
not exist are dropped, as on AWS, where the group must be created first."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, allow_api, create_function, curl, error_of, unique

FORMAT = json.dumps({
    "requestId": "$context.requestId", "status": "$context.status", "routeKey": "$context.routeKey",
    "ip": "$context.identity.sourceIp", "latency": "$context.responseLatency", "err": "$context.error.message",
    "type": "$context.error.responseType", "integ": "$context.integrationStatus",
    "ierr": "$context.integrationErrorMessage", "stage": "$context.stage", "path": "$context.path",
}, separators=(",", ":"))

OK_SRC = 'export const handler = async () => ({ statusCode: 201, body: "created" });\n'
# The seed's classic mistake: body is an object, not a string -> 502.
RAW_SRC = 'export const handler = async () => ({ statusCode: 200, body: { a: 1 } });\n'


def group_arn(name: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


@pytest.fixture(scope="module")
def logs(client):
    return client("logs")


@pytest.fixture(scope="module")
def setup(lam, apigw, logs):
    group = f"/portico/e2e/{unique('access')}"
    logs.create_log_group(logGroupName=group)
    ok = create_function(lam, unique("access-ok"), {"index.mjs": OK_SRC})
    raw = create_function(lam, unique("access-raw"), {"index.mjs": RAW_SRC})
    api_id = apigw.create_api(Name=unique("access"), ProtocolType="HTTP")["ApiId"]
    for fn in (ok, raw):
        allow_api(lam, fn["FunctionName"], api_id)
    ok_iid, raw_iid = (apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
                                                PayloadFormatVersion="2.0")["IntegrationId"] for fn in (ok, raw))
    apigw.create_route(ApiId=api_id, RouteKey="GET /ok", Target=f"integrations/{ok_iid}")
    apigw.create_route(ApiId=api_id, RouteKey="GET /tight", Target=f"integrations/{ok_iid}")
    apigw.create_route(ApiId=api_id, RouteKey="GET /raw", Target=f"integrations/{raw_iid}")
    stage = apigw.create_stage(
        ApiId=api_id, StageName="$default", AutoDeploy=True,
        RouteSettings={"GET /tight": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0}},
        AccessLogSettings={"DestinationArn": group_arn(group), "Format": FORMAT},
    )
    # A second stage of the same API without access logging.
    apigw.create_stage(ApiId=api_id, StageName="plain")
    apigw.create_deployment(ApiId=api_id, StageName="plain")
    return {"api_id": api_id, "group": group, "stage": stage}


def events_of(logs, group, count, timeout=10.0, **kw):
    """The group's events once there are at least `count` (access logs arrive shortly
    after the answer, as on AWS)."""
    deadline = time.monotonic() + timeout
    while True:
        events = logs.filter_log_events(logGroupName=group, **kw)["events"]
        if len(events) >= count or time.monotonic() > deadline:
            return events


def test_stage_documents_its_access_log_settings(setup, apigw):
    want = {"DestinationArn": group_arn(setup["group"]), "Format": FORMAT}
    assert setup["stage"]["AccessLogSettings"] == want
    assert apigw.get_stage(ApiId=setup["api_id"], StageName="$default")["AccessLogSettings"] == want
    assert "AccessLogSettings" not in apigw.get_stage(ApiId=setup["api_id"], StageName="plain")


def test_one_line_per_request_with_the_requests_values(setup, server, logs):
    api_id, group = setup["api_id"], setup["group"]
    expected = {}
    for path, status, route, err, kind, integ in [
        ("/ok", 201, "GET /ok", "-", "-", "200"),
        ("/nope", 404, "-", "Not Found", "RESOURCE_NOT_FOUND", "-"),
        ("/tight", 429, "GET /tight", "Too Many Requests", "THROTTLED", "-"),
        ("/raw", 502, "GET /raw", "Internal Server Error", "INTEGRATION_FAILURE", "200"),
    ]:
        r = curl(server.host_url(api_id, path))
        assert r.status == status, (path, r.status, r.text)
        rid = r.headers["apigw-requestid"]
        expected[rid] = {"status": str(status), "routeKey": route, "ip": "127.0.0.1", "err": err, "type": kind,
                         "integ": integ, "stage": "$default", "path": path}

    events = events_of(logs, group, len(expected))
    lines = [json.loads(e["message"]) for e in events]
    assert sorted(l["requestId"] for l in lines) == sorted(expected), lines
    for line in lines:
        want = expected[line["requestId"]]
        assert {k: line[k] for k in want} == want, line
        assert line["latency"].isdigit(), line
        if line["status"] == "502":
            assert "body must be a string" in line["ierr"], line
        else:
            assert line["ierr"] == "-", line
    # All of them in the stage's stream, `{apiId}/{stageName}`, in the order they came.
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [f"{api_id}/$default"]
    got = logs.get_log_events(logGroupName=group, logStreamName=f"{api_id}/$default", startFromHead=True)["events"]
    assert [json.loads(e["message"])["requestId"] for e in got] == list(expected)
    assert all(abs(e["timestamp"] - time.time() * 1000) < 60_000 for e in got), got


def test_a_stage_without_access_logging_writes_nothing(setup, server, logs):
    api_id, group = setup["api_id"], setup["group"]
    before = len(events_of(logs, group, 0, timeout=0))
    quiet = curl(server.host_url(api_id, "/plain/ok"))
    assert quiet.status == 201, quiet.text
    # A logged request after it: lines are written in order, so once this one is there,
    # a line for the quiet request would be there too.
    marker = curl(server.host_url(api_id, "/ok")).headers["apigw-requestid"]
    events = events_of(logs, group, before + 1)
    ids = [json.loads(e["message"])["requestId"] for e in events]
    assert ids[before:] == [marker], ids
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]] == [
        f"{api_id}/$default"]


def test_format_without_request_id_is_refused(setup, apigw):
    api_id, arn = setup["api_id"], group_arn(setup["group"])
    bad = '{"status":"$context.status"}'
    with pytest.raises(ClientError) as e:
        apigw.create_stage(ApiId=api_id, StageName="nolog", AccessLogSettings={"DestinationArn": arn, "Format": bad})
    assert error_of(e) == ("BadRequestException", 400)
    assert e.value.response["Error"]["Message"] == (
        "The following errors are found in Access Log Format: Access Log format must include either "
        f"$context.requestId or $context.extendedRequestId : '{bad}'")
    with pytest.raises(ClientError) as e:
        apigw.update_stage(ApiId=api_id, StageName="$default", AccessLogSettings={"DestinationArn": arn, "Format": bad})
    assert error_of(e) == ("BadRequestException", 400)
    # extendedRequestId is enough; a destination that is not a log group ARN is not.
    apigw.create_stage(ApiId=api_id, StageName="extended",
                       AccessLogSettings={"DestinationArn": arn, "Format": "$context.extendedRequestId"})
    with pytest.raises(ClientError) as e:
        apigw.create_stage(ApiId=api_id, StageName="nolog",
                           AccessLogSettings={"DestinationArn": f"arn:aws:s3:::{unique('b')}", "Format": FORMAT})
    assert error_of(e) == ("BadRequestException", 400)
    # Nothing was changed by the refused update.
    assert apigw.get_stage(ApiId=api_id, StageName="$default")["AccessLogSettings"]["Format"] == FORMAT


def test_lines_for_a_missing_group_are_dropped(setup, server, apigw, logs):
    api_id, group = setup["api_id"], setup["group"]
    missing = f"/portico/e2e/{unique('missing')}"
    apigw.create_stage(ApiId=api_id, StageName="lost",
                       AccessLogSettings={"DestinationArn": group_arn(missing) + ":*", "Format": FORMAT})
    apigw.create_deployment(ApiId=api_id, StageName="lost")
    assert curl(server.host_url(api_id, "/lost/ok")).status == 201
    before = len(events_of(logs, group, 0, timeout=0))
    marker = curl(server.host_url(api_id, "/ok")).headers["apigw-requestid"]
    assert json.loads(events_of(logs, group, before + 1)[-1]["message"])["requestId"] == marker
    # Not created behind the user's back, and Portico says why nothing arrives.
    assert logs.describe_log_groups(logGroupNamePrefix=missing)["logGroups"] == []
    log = server.log_path.read_text(errors="replace")
    assert f"the log group does not exist (create it: aws logs create-log-group --log-group-name {missing})" in log

    # Once the group exists, the stage's lines arrive.
    logs.create_log_group(logGroupName=missing)
    rid = curl(server.host_url(api_id, "/lost/ok")).headers["apigw-requestid"]
    events = events_of(logs, missing, 1)
    assert [json.loads(e["message"])["requestId"] for e in events] == [rid]
    assert json.loads(events[0]["message"])["path"] == "/lost/ok"


def test_turning_access_logging_off(setup, server, apigw, logs):
    api_id = setup["api_id"]
    group = f"/portico/e2e/{unique('off')}"
    logs.create_log_group(logGroupName=group)
    apigw.create_stage(ApiId=api_id, StageName="brief",
                       AccessLogSettings={"DestinationArn": group_arn(group), "Format": "$context.requestId $context.status"})
    apigw.create_deployment(ApiId=api_id, StageName="brief")
    first = curl(server.host_url(api_id, "/brief/ok")).headers["apigw-requestid"]
    assert [e["message"] for e in events_of(logs, group, 1)] == [f"{first} 201"]
    # Empty settings turn it off.
    apigw.update_stage(ApiId=api_id, StageName="brief", AccessLogSettings={})
    assert "AccessLogSettings" not in apigw.get_stage(ApiId=api_id, StageName="brief")
    curl(server.host_url(api_id, "/brief/ok"))
    marker = curl(server.host_url(api_id, "/ok")).headers["apigw-requestid"]
    assert events_of(logs, setup["group"], 1, filterPattern=f'"{marker}"'), "the marker line never arrived"
    assert [e["message"] for e in events_of(logs, group, 2, timeout=0)] == [f"{first} 201"]
