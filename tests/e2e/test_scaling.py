"""Scaling, concurrency limits and asynchronous invocation, through boto3 and curl.

Functions report to a small HTTP recorder run by the test (loopback), so what they
did is observed from outside, whatever their sandbox allows them to write."""

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import (
    Server, allow_api, boto_client, create_function, curl, error_of, function_arn, stop_and_check, unique,
)

# Sleeps for event.ms (or the `ms` query parameter), then answers with its pid.
SLEEPER = """
export const handler = async (event) => {
  const ms = Number(event.ms ?? event.queryStringParameters?.ms ?? 0);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  return { pid: process.pid };
};
"""

# Reports each attempt to the recorder, then fails when asked to.
REPORTER = """
import http from "node:http";
export const handler = async (event, context) => {
  await new Promise((resolve, reject) => {
    const body = JSON.stringify({ requestId: context.awsRequestId, tag: event.tag, at: Date.now() });
    const req = http.request(event.recorder, { method: "POST" }, (res) => { res.resume(); res.on("end", resolve); });
    req.on("error", reject);
    req.end(body);
  });
  if (event.fail) throw new Error("failing on purpose");
  return "ok";
};
"""


def invoke_json(lam, name, payload):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    assert "FunctionError" not in r, r["Payload"].read()
    return json.loads(r["Payload"].read())


def the_throttled_one(lam, name):
    """Three concurrent 1.5 s invokes where two may run: the refused one's error."""
    def call(_):
        try:
            return invoke_json(lam, name, {"ms": 1500})
        except ClientError as e:
            return e

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(call, range(3)))
    throttled = [r for r in results if isinstance(r, ClientError)]
    assert len(throttled) == 1, results
    return throttled


def test_concurrent_requests_scale_out_then_reuse_warm_environments(lam, apigw, server):
    name = unique("sleeper")
    fn = create_function(lam, name, {"index.mjs": SLEEPER}, Timeout=10)
    api = apigw.create_api(Name=name, ProtocolType="HTTP", Target=fn["FunctionArn"])
    url = f"{server.endpoint}/execute-api/{api['ApiId']}/?ms=1500"

    def wave():
        t0 = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: curl(url), range(20)))
        assert all(a.status == 200 for a in answers), [(a.status, a.text) for a in answers]
        return time.monotonic() - t0, {json.loads(a.text)["pid"] for a in answers}

    took, pids = wave()
    # Twenty 1.5 s requests in parallel environments: about one duration, not twenty.
    assert len(pids) == 20, f"20 concurrent requests ran in {len(pids)} environments"
    assert took < 10, f"20 concurrent 1.5 s requests took {took:.1f}s"
    took, again = wave()
    assert again == pids, "the second wave did not reuse the 20 warm environments"


def test_reserved_concurrency_throttles_beyond_the_reservation(lam, apigw, server):
    name = unique("reserved")
    fn = create_function(lam, name, {"index.mjs": SLEEPER})
    r = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    assert r["ReservedConcurrentExecutions"] == 2
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 2
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 2}

    throttled = the_throttled_one(lam, name)
    err = throttled[0].response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert err["message"] == "Rate Exceeded."

    # Zero blocks every invoke, and the HTTP API answers as API Gateway does for a
    # throttled function.
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert error_of(e) == ("TooManyRequestsException", 429)
    api = apigw.create_api(Name=name, ProtocolType="HTTP", Target=fn["FunctionArn"])
    r = curl(f"{server.endpoint}/execute-api/{api['ApiId']}/")
    assert (r.status, r.text) == (500, '{"message":"Internal Server Error"}')

    lam.delete_function_concurrency(FunctionName=name)
    assert lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    assert "pid" in invoke_json(lam, name, {})


def test_reservations_cannot_eat_the_unreserved_minimum(lam):
    name = unique("greedy")
    create_function(lam, name, {"index.mjs": SLEEPER})
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=950)
    assert error_of(e) == ("InvalidParameterValueException", 400)
    assert "below its minimum value of [100]" in str(e.value)
    # Other tests on this server may hold reservations of their own: judge the change.
    before = settings["AccountLimit"]["UnreservedConcurrentExecutions"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=100)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before - 100
    lam.delete_function_concurrency(FunctionName=name)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A server whose accounts may run 2 invocations at once, retrying async failures fast."""
    base = tmp_path_factory.mktemp("small")
    s = Server(base / "data", base / "portico.log",
               extra_args=("--account-concurrency", "2", "--async-retry-delay", "0.5")).start()
    yield s
    try:
        stop_and_check(s)
    finally:
        s.kill()


def test_account_concurrency_limit(small_server):
    lam = boto_client(small_server.endpoint, "lambda")
    name = unique("busy")
    create_function(lam, name, {"index.mjs": SLEEPER})

    throttled = the_throttled_one(lam, name)
    assert throttled[0].response["Reason"] == "ConcurrentInvocationLimitExceeded"


def test_async_invoke_retries_a_failing_function_twice(small_server, recorder):
    lam = boto_client(small_server.endpoint, "lambda")
    name = unique("async-fail")
    create_function(lam, name, {"index.mjs": REPORTER})
    tag = unique("t")
    r = lam.invoke(FunctionName=name, InvocationType="Event",
                   Payload=json.dumps({"recorder": recorder.url, "tag": tag, "fail": True}).encode())
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["RequestId"]
    attempts = recorder.wait_for(tag, 3, timeout=15)
    assert len(attempts) == 3, attempts
    # One request id across the attempts, as Lambda does; delays of 1x and 2x.
    assert {a["requestId"] for a in attempts} == {request_id}
    gaps = [b["at"] - a["at"] for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 450 and gaps[1] >= 950, gaps
    time.sleep(1.5)
    assert len(recorder.tagged(tag)) == 3, "a failing event was retried more than twice"


def test_async_events_survive_a_restart(tmp_path, recorder):
    # With reserved concurrency 0 the event is accepted but cannot run; it must still be
    # there after a restart, and run once the function may run again.
    s = Server(tmp_path / "data", tmp_path / "portico.log", extra_args=("--async-retry-delay", "0.5")).start()
    try:
        lam = boto_client(s.endpoint, "lambda")
        name = unique("async-durable")
        create_function(lam, name, {"index.mjs": REPORTER})
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        tag = unique("t")
        r = lam.invoke(FunctionName=name, InvocationType="Event",
                       Payload=json.dumps({"recorder": recorder.url, "tag": tag}).encode())
        assert r["StatusCode"] == 202
        time.sleep(0.5)
        assert recorder.tagged(tag) == []
        stop_and_check(s)

        s = Server(tmp_path / "data", tmp_path / "portico.log", extra_args=("--async-retry-delay", "0.5")).start()
        lam = boto_client(s.endpoint, "lambda")
        lam.delete_function_concurrency(FunctionName=name)
        ran = recorder.wait_for(tag, 1, timeout=15)
        assert len(ran) == 1 and ran[0]["requestId"] == r["ResponseMetadata"]["RequestId"]
    finally:
        stop_and_check(s)


def test_integration_timeout_is_503_and_the_function_is_not_cut_short(lam, apigw, server):
    # The HTTP API stops waiting at TimeoutInMillis; the invocation itself runs on to the
    # function's own timeout, as on AWS.
    name = unique("slow")
    fn = create_function(lam, name, {"index.mjs": SLEEPER}, Timeout=5)
    api = apigw.create_api(Name=name, ProtocolType="HTTP", Target=fn["FunctionArn"])
    integration = apigw.get_integrations(ApiId=api["ApiId"])["Items"][0]
    apigw.update_integration(ApiId=api["ApiId"], IntegrationId=integration["IntegrationId"], TimeoutInMillis=500)
    t0 = time.monotonic()
    r = curl(f"{server.endpoint}/execute-api/{api['ApiId']}/?ms=2000")
    took = time.monotonic() - t0
    assert (r.status, r.text) == (503, '{"message":"Service Unavailable"}')
    assert took < 1.9, f"the gateway waited {took:.2f}s past a 500 ms integration timeout"


def pids_under_load(lam, name, clients, calls_each):
    """`clients` threads each invoking `name` `calls_each` times back to back: the pids
    (environments) that answered."""
    def client(_):
        return [invoke_json(lam, name, {})["pid"] for _ in range(calls_each)]

    with ThreadPoolExecutor(clients) as pool:
        return {pid for pids in pool.map(client, range(clients)) for pid in pids}


def test_warm_first_short_invocations_share_a_few_hot_environments(lam):
    """A function whose invocations take well under a cold start: once its pool has seen a
    cold start and warm turnarounds, more callers in a loop than it lets run at once (4
    busy environments per CPU) queue for busy environments instead of starting one each
    (the default, warm-first dispatch)."""
    name = unique("warmfirst")
    create_function(lam, name, {"index.mjs": SLEEPER})
    [first] = pids_under_load(lam, name, 1, 5)  # one cold start, then warm turnarounds
    free = 4 * len(os.sched_getaffinity(0))
    callers = free + 8
    pids = pids_under_load(lam, name, callers, 20)
    assert first in pids
    assert len(pids) <= free + 2, f"{len(pids)} environments served {callers} looping callers"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (scripts/setup.sh installs it)")
def test_a_fast_function_concentrates_on_a_few_environments_after_a_burst_started_many(lam, apigw, server):
    """A first burst of slow requests starts an environment per request (as Lambda does).
    Once the function turns fast, 32 connections are served by a few hot environments,
    queueing for them, while the others stay idle (to be reaped), instead of keeping every
    process of the burst in rotation (which ran at a fifth of the throughput). Each
    environment has its own log stream: the streams written during the load are the
    environments that served it."""
    name = unique("concentrate")
    create_function(lam, name, {"index.mjs": SLEEPER})
    api_id = apigw.create_api(Name=name, ProtocolType="HTTP", Target=function_arn(name))["ApiId"]
    allow_api(lam, name, api_id)
    free = 4 * len(os.sched_getaffinity(0))
    burst = free + 8
    with ThreadPoolExecutor(burst) as pool:
        started = set(pool.map(lambda _: curl(server.path_url(api_id, "/?ms=1500")).json()["pid"], range(burst)))
    assert len(started) >= free + 4, f"the burst started only {len(started)} environments"
    for _ in range(40):  # the function's turnaround is now that of a fast one
        assert curl(server.path_url(api_id, "/?ms=0")).status == 200
    since_ms = int(time.time() * 1000)
    out = subprocess.run(["wrk", "-t1", "-c32", "-d3s", server.path_url(api_id, "/?ms=0")],
                         capture_output=True, text=True, timeout=30)
    assert "Non-2xx" not in out.stdout and "Requests/sec" in out.stdout, out.stdout
    logs = boto_client(server.endpoint, "logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    served = [s for s in streams if s.get("lastEventTimestamp", 0) >= since_ms]
    assert len(streams) >= len(started)
    assert len(served) <= free + 2, f"{len(served)} of {len(streams)} environments served 32 connections"


def test_warm_wait_off_starts_an_environment_per_concurrent_request(tmp_path):
    """`--warm-wait off`: Lambda's rule, a request that finds no idle environment starts
    one, so the same 16 looping callers leave (nearly) one environment each."""
    s = Server(tmp_path / "data", tmp_path / "portico.log", extra_args=("--warm-wait", "off")).start()
    try:
        lam = boto_client(s.endpoint, "lambda")
        name = unique("warmoff")
        create_function(lam, name, {"index.mjs": SLEEPER})
        pids_under_load(lam, name, 1, 5)
        pids = pids_under_load(lam, name, 16, 20)
        assert len(pids) >= 10, f"only {len(pids)} environments served 16 looping callers"
    finally:
        stop_and_check(s)
