"""Function logs in CloudWatch Logs: what a function writes, with Lambda's INIT_START (once
per environment) and START/END/REPORT lines, read back with the real AWS CLI v1
(`describe-log-streams`, `get-log-events`, `filter-log-events`) and boto3; pagination; CLI
v2's `logs tail` and `--follow`; errors; and logs surviving a restart. The order of a cold
start's init output is tested in test_init_logs.py."""

import base64
import json
import queue
import re
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT, AWS2_BIN, REGION, Server, aws_env, boto_client, create_function, error_of, run_aws, stop_and_check,
    unique,
)

LOGGING_SRC = """
export const handler = async (event) => {
  console.log("hello from handler", event.n);
  console.log("line one\\nline two");
  console.error("something bad");
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep));
  for (let i = 0; i < (event.lines ?? 0); i++) console.log(`line ${i}`);
  return { ok: true };
};
"""

STREAM_NAME = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
# The first event of every environment's stream (a Node.js 22 function in REGION).
INIT_START = re.compile(
    rf"^INIT_START Runtime Version: nodejs:22\.v\d+\tRuntime Version ARN: arn:aws:lambda:{REGION}::runtime:[0-9a-f]{{64}}\n$"
)
REPORT = re.compile(
    r"^REPORT RequestId: (?P<rid>[0-9a-f-]{36})\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 128 MB\tMax Memory Used: [1-9]\d* MB\t(?P<init>Init Duration: \d+\.\d{2} ms\t)?\n$"
)


def invoke(lam, name, tail=False, **event):
    kw = {"LogType": "Tail"} if tail else {}
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r
    return r


@pytest.fixture(scope="module")
def logs(client):
    return client("logs")


@pytest.fixture(scope="module")
def logged(lam):
    """A function invoked twice (a cold start, then warm), the first time with LogType Tail."""
    name = unique("logs")
    create_function(lam, name, {"index.mjs": LOGGING_SRC})
    first = invoke(lam, name, tail=True, n=1)
    second = invoke(lam, name, n=2)
    return {
        "name": name,
        "group": f"/aws/lambda/{name}",
        "rids": [first["ResponseMetadata"]["RequestId"], second["ResponseMetadata"]["RequestId"]],
        "tail": base64.b64decode(first["LogResult"]).decode(),
    }


def test_cli_shows_the_functions_lines_and_lambdas_own(logged, aws):
    group = logged["group"]
    rid1, rid2 = logged["rids"]

    rc, out, err = aws("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert rc == 0, err
    assert [g["logGroupName"] for g in out["logGroups"]] == [group]
    g = out["logGroups"][0]
    assert g["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
    assert g["storedBytes"] > 0 and "retentionInDays" not in g

    rc, out, err = aws("logs", "describe-log-streams", "--log-group-name", group)
    assert rc == 0, err
    streams = out["logStreams"]
    assert len(streams) == 1, streams  # both invocations ran in the one warm environment
    stream = streams[0]
    assert STREAM_NAME.match(stream["logStreamName"]), stream
    assert stream["firstEventTimestamp"] <= stream["lastEventTimestamp"] <= stream["lastIngestionTime"]
    assert stream["arn"].endswith(f":log-group:{group}:log-stream:{stream['logStreamName']}")

    rc, out, err = aws("logs", "get-log-events", "--log-group-name", group,
                       "--log-stream-name", stream["logStreamName"], "--start-from-head")
    assert rc == 0, err
    events = out["events"]
    messages = [e["message"] for e in events]
    assert all(m.endswith("\n") for m in messages), messages
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps)
    assert all(e["ingestionTime"] >= e["timestamp"] for e in events)

    # INIT_START once (the function logs nothing during init), then per invocation: START,
    # the function's three records, END, REPORT.
    assert len(messages) == 13, messages
    assert INIT_START.match(messages[0]), messages[0]
    for i, (rid, n) in enumerate(((rid1, 1), (rid2, 2))):
        start, hello, multi, bad, end, report = messages[1 + 6 * i: 7 + 6 * i]
        assert start == f"START RequestId: {rid} Version: $LATEST\n"
        assert re.match(rf"^\d{{4}}-\d\d-\d\dT[\d:.]+Z\t{rid}\tINFO\thello from handler {n}\n$", hello), hello
        # Node writes a multi-line record as one line with \r; the event has the newline back.
        assert multi.endswith(f"\t{rid}\tINFO\tline one\nline two\n"), multi
        assert f"\t{rid}\tERROR\tsomething bad" in bad, bad
        assert end == f"END RequestId: {rid}\n"
        m = REPORT.match(report)
        assert m and m["rid"] == rid, report
        # Init Duration on the cold start only.
        assert bool(m["init"]) == (i == 0), report

    # LogType=Tail shows the same log as the stream for the invocation: from its START, as
    # init wrote nothing, and without INIT_START (with the runtime's \r kept).
    assert logged["tail"].replace("\r", "\n") == "".join(messages[1:7])

    rc, out, err = aws("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "REPORT")
    assert rc == 0, err
    reports = out["events"]
    assert [REPORT.match(e["message"])["rid"] for e in reports] == [rid1, rid2]
    for e in reports:
        assert e["logStreamName"] == stream["logStreamName"]
        assert re.fullmatch(r"\d{56}", e["eventId"]), e
        assert e["ingestionTime"] >= e["timestamp"]
    assert out["searchedLogStreams"] == []  # AWS no longer reports searched streams
    assert "Init Duration" in reports[0]["message"] and "Init Duration" not in reports[1]["message"]

    # Text patterns: terms, quoted phrases, exclusions, alternatives (case-sensitive).
    def matching(pattern):
        rc, out, err = aws("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", pattern)
        assert rc == 0, err
        return [e["message"] for e in out["events"]]

    assert len(matching('"line one"')) == 2
    assert matching("hello -handler") == []
    assert len(matching("RequestId -REPORT -START")) == 2  # the END lines
    assert len(matching("?START ?END")) == 5  # INIT_START too
    assert matching("INIT_START") == [messages[0]]
    assert matching("report") == []
    assert matching('"hello from handler 2"') == [messages[8]]


def test_get_log_events_pages_both_ways(lam, logs):
    name = unique("logs-pages")
    create_function(lam, name, {"index.mjs": LOGGING_SRC})
    rid = invoke(lam, name, lines=30)["ResponseMetadata"]["RequestId"]
    group = f"/aws/lambda/{name}"
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
    everything = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert len(everything) == 37  # INIT_START, START, 3 records, 30 lines, END, REPORT
    assert INIT_START.match(everything[0]["message"]), everything[0]
    assert everything[1]["message"].startswith(f"START RequestId: {rid}")

    # Forward from the head, 7 at a time, until the token comes back unchanged.
    got, token, calls = [], None, 0
    while True:
        kw = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=7, **kw)
        calls += 1
        got += page["events"]
        assert page["nextBackwardToken"].startswith("b/") and page["nextForwardToken"].startswith("f/")
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        token = page["nextForwardToken"]
    assert got == everything and calls == 7

    # The default is the newest events; then backward, 10 at a time.
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10)
    assert page["events"] == everything[-10:]
    got = page["events"]
    token = page["nextBackwardToken"]
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10, nextToken=token)
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        got = page["events"] + got
        token = page["nextBackwardToken"]
    assert got == everything

    # Time bounds: startTime included, endTime excluded.
    t = everything[5]["timestamp"]
    inside = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True,
                                 startTime=t, endTime=t + 1)["events"]
    assert inside and all(e["timestamp"] == t for e in inside)
    assert inside == [e for e in everything if e["timestamp"] == t]

    # FilterLogEvents pages with nextToken until it is absent; the CLI follows it by itself.
    paginator = logs.get_paginator("filter_log_events")
    pages = list(paginator.paginate(logGroupName=group, filterPattern='"line "',
                                    PaginationConfig={"PageSize": 8}))
    assert [len(p["events"]) for p in pages] == [8, 8, 8, 7]  # "line one" + 30 "line N"
    assert "nextToken" not in pages[-1]
    res = run_aws(logs.meta.endpoint_url, "logs", "filter-log-events", "--log-group-name", group,
                  "--filter-pattern", '"line "', "--page-size", "8")
    assert res.rc == 0, res.err
    assert [e["eventId"] for e in res.out["events"]] == [e["eventId"] for p in pages for e in p["events"]]
    # Newest first, when asked.
    newest = logs.filter_log_events(logGroupName=group, startFromHead=False, limit=2)
    assert [e["message"] for e in newest["events"]] == [everything[-1]["message"], everything[-2]["message"]]
    rest = logs.filter_log_events(logGroupName=group, nextToken=newest["nextToken"], limit=1)
    assert rest["events"][0]["message"] == everything[-3]["message"]


def test_streams_per_environment_and_their_order(lam, logs, aws):
    name = unique("logs-streams")
    create_function(lam, name, {"index.mjs": LOGGING_SRC})
    # Three concurrent invocations run in three environments: three streams.
    threads = [threading.Thread(target=invoke, args=(lam, name), kwargs={"sleep": 400, "n": i}) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    group = f"/aws/lambda/{name}"
    rc, out, err = aws("logs", "describe-log-streams", "--log-group-name", group, "--page-size", "1")
    assert rc == 0, err
    names = [s["logStreamName"] for s in out["logStreams"]]
    assert len(names) == 3 and names == sorted(names), names
    first = logs.describe_log_streams(logGroupName=group, limit=2)
    assert [s["logStreamName"] for s in first["logStreams"]] == names[:2]
    second = logs.describe_log_streams(logGroupName=group, limit=2, nextToken=first["nextToken"])
    assert [s["logStreamName"] for s in second["logStreams"]] == names[2:] and "nextToken" not in second
    by_time = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]
    last = [s["lastEventTimestamp"] for s in by_time]
    assert last == sorted(last, reverse=True)
    assert logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=names[1])["logStreams"][0][
        "logStreamName"] == names[1]
    # FilterLogEvents interleaves the streams by timestamp.
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert {e["logStreamName"] for e in events} == set(names)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    only = logs.filter_log_events(logGroupName=group, logStreamNames=[names[0]], filterPattern="START")["events"]
    assert [e["message"].split(" ")[0] for e in only] == ["INIT_START", "START"], only  # a term matches within words
    assert {e["logStreamName"] for e in only} == {names[0]}


def tail_lines(server, *args, timeout=60):
    r = run_aws(server.endpoint, "logs", "tail", *args, cli=AWS2_BIN, timeout=timeout)
    assert r.rc == 0, r.err
    return r.out.splitlines() if isinstance(r.out, str) else []


def test_cli_v2_logs_tail(lam, server):
    """`aws logs tail` (CLI v2 only): every event of the group, oldest first, as
    `{timestamp} {stream} {message}`; `--format short` and `--filter-pattern` narrow it."""
    name = unique("logs-tail")
    create_function(lam, name, {"index.mjs": LOGGING_SRC})
    rids = [invoke(lam, name, n=i)["ResponseMetadata"]["RequestId"] for i in range(2)]
    group = f"/aws/lambda/{name}"

    lines = tail_lines(server, group, "--since", "10m")
    head = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 \d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32} ")
    messages: list[str] = []
    for line in lines:  # an event's message may span lines: only its first carries the header
        if head.match(line):
            messages.append(line.split(" ", 2)[2])
        else:
            assert messages, lines
            messages[-1] += "\n" + line
    assert len(messages) == 13 and any(m.endswith("\tline one\nline two") for m in messages), messages
    assert INIT_START.match(messages[0] + "\n"), messages[0]
    assert [m for m in messages if m.startswith("START")] == [f"START RequestId: {r} Version: $LATEST" for r in rids]
    reports = [m for m in messages if m.startswith("REPORT")]
    assert [REPORT.match(m + "\t\n")["rid"] for m in reports] == rids, reports  # tail strips the tab
    assert "Init Duration" in reports[0] and "Init Duration" not in reports[1]

    short = tail_lines(server, group, "--since", "10m", "--format", "short", "--filter-pattern", "REPORT")
    assert len(short) == 2 and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d REPORT RequestId: ", line)
                                   for line in short), short


def test_cli_v2_logs_tail_follow_shows_each_event_once(lam, server):
    """`aws logs tail GROUP --follow`: new invocations appear as they happen, each line once."""
    name = unique("logs-follow")
    create_function(lam, name, {"index.mjs": LOGGING_SRC})
    rids = [invoke(lam, name, n=0)["ResponseMetadata"]["RequestId"]]
    cmd = [str(AWS2_BIN), "--endpoint-url", server.endpoint, "logs", "tail", f"/aws/lambda/{name}",
           "--follow", "--since", "10m", "--format", "short"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=aws_env(server.endpoint))
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    shown: list[str] = []

    def until_report_of(rid):
        deadline = time.monotonic() + 20
        while not any(rid in line and " REPORT " in line for line in shown):
            try:
                shown.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                proc.kill()
                pytest.fail(f"no REPORT for {rid} within 20 s; shown: {shown}; stderr: {proc.stderr.read()}")

    try:
        until_report_of(rids[0])
        for n in (1, 2):
            rids.append(invoke(lam, name, n=n)["ResponseMetadata"]["RequestId"])
            until_report_of(rids[-1])
    finally:
        proc.kill()
        proc.wait()
    reports = [line for line in shown if " REPORT " in line]
    assert [next(r for r in rids if r in line) for line in reports] == rids, shown
    # INIT_START, then 6 events of 7 lines per invocation ("line one\nline two" is one event),
    # none shown twice.
    assert len(shown) == 22 and sum(line.endswith(f"\t{rid}\tINFO\thello from handler {n}\n")
                                    for n, rid in enumerate(rids) for line in shown) == 3, shown
    assert [i for i, line in enumerate(shown) if " INIT_START Runtime Version: nodejs:22." in line] == [0], shown


def test_log_group_management_and_errors(logs, aws, server):
    group = f"/test/{unique('grp')}"
    logs.create_log_group(logGroupName=group)
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=group)
    assert error_of(e) == ("ResourceAlreadyExistsException", 400)
    assert e.value.response["Error"]["Message"] == "The specified log group already exists"

    logs.put_retention_policy(logGroupName=group, retentionInDays=14)
    [g] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert g["retentionInDays"] == 14 and g["logGroupName"] == group
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName=group, retentionInDays=2)
    assert error_of(e) == ("InvalidParameterException", 400)
    assert "Member must satisfy enum value set" in e.value.response["Error"]["Message"]
    logs.delete_retention_policy(logGroupName=group)
    [g] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert "retentionInDays" not in g
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []

    # Groups belong to a region.
    other = boto3_in_region(server, "eu-west-1")
    assert other.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []

    logs.delete_log_group(logGroupName=group)
    missing = "The specified log group does not exist."
    for call in (lambda: logs.delete_log_group(logGroupName=group),
                 lambda: logs.describe_log_streams(logGroupName=group),
                 lambda: logs.filter_log_events(logGroupName=group),
                 lambda: logs.get_log_events(logGroupName=group, logStreamName="s"),
                 lambda: logs.put_retention_policy(logGroupName=group, retentionInDays=1)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", 400)
        assert e.value.response["Error"]["Message"] == missing

    rc, out, err = aws("logs", "get-log-events", "--log-group-name", "/aws/lambda/no-such-function",
                       "--log-stream-name", "x")
    assert rc != 0
    assert "ResourceNotFoundException" in err and missing in err, err

    logs.create_log_group(logGroupName=group)
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName="nope")
    assert error_of(e) == ("ResourceNotFoundException", 400)
    assert e.value.response["Error"]["Message"] == "The specified log stream does not exist."
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, nextToken="not-a-token")
    assert error_of(e) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a")
    assert error_of(e) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="has spaces")
    assert error_of(e) == ("InvalidParameterException", 400)
    logs.delete_log_group(logGroupName=group)


def boto3_in_region(server, region):
    return boto_client(server.endpoint, "logs", region=region)


def test_logs_survive_a_restart(tmp_path):
    data_dir = tmp_path / "data"
    first = Server(data_dir, tmp_path / "first.log").start()
    try:
        lam = boto_client(first.endpoint, "lambda")
        create_function(lam, "logged", {"index.mjs": LOGGING_SRC})
        rid = invoke(lam, "logged", n=7)["ResponseMetadata"]["RequestId"]
        stop_and_check(first)
    finally:
        first.kill()

    second = Server(data_dir, tmp_path / "second.log").start()
    try:
        res = run_aws(second.endpoint, "logs", "filter-log-events", "--log-group-name", "/aws/lambda/logged")
        assert res.rc == 0, res.err
        messages = [e["message"] for e in res.out["events"]]
        assert INIT_START.match(messages[0]), messages[0]
        assert messages[1] == f"START RequestId: {rid} Version: $LATEST\n"
        assert f"\t{rid}\tINFO\thello from handler 7\n" in messages[2]
        assert REPORT.match(messages[-1])["rid"] == rid
        # A new environment after the restart writes a new stream in the same group.
        lam = boto_client(second.endpoint, "lambda")
        invoke(lam, "logged", n=8)
        res = run_aws(second.endpoint, "logs", "describe-log-streams", "--log-group-name", "/aws/lambda/logged")
        assert res.rc == 0, res.err
        assert len(res.out["logStreams"]) == 2
        stop_and_check(second)
    finally:
        second.kill()
