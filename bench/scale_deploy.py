"""Deploys FUNCTIONS more functions and one HTTP API of ROUTES routes on a running Portico,
as a deployment tool would (boto3, one call per resource), and checks they answer.

Usage: scale_deploy.py ENDPOINT CREDENTIALS_FILE FUNCTIONS ROUTES [--auto-deploy]

- functions `scale-0000`...: each its own small Node.js zip (the seed's handler plus a
  line naming the function, so every package is a distinct blob), each with a permission
  for the API to invoke it;
- the API is quick-created on `scale-0000` (route `$default`), gets one AWS_PROXY
  integration per function and ROUTES routes, ten per service `/svc{k}` over the
  functions in turn: literals, `{param}`s (one, two, and a literal after one) and greedy
  `{proxy+}`s, under GET, POST, PUT, DELETE and ANY (see TEMPLATES);
- by default the `$default` stage's AutoDeploy is turned off while routes are added and
  the API is deployed once at the end (as `sam`/Terraform users with many routes do);
  `--auto-deploy` keeps it on, so every CreateRoute redeploys the stage (API Gateway's
  quick-create default).

Prints one JSON object: timings, the API id and the sample paths it checked.
Calls run on a few threads (a client each): the store commits one at a time anyway.
"""
import concurrent.futures
import io
import json
import os
import pathlib
import sys
import threading
import time
import urllib.request
import zipfile

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
import credentials  # noqa: E402
import botocore.config  # noqa: E402

endpoint, credentials_file = sys.argv[1], sys.argv[2]
n_functions, n_routes = int(sys.argv[3]), int(sys.argv[4])
auto_deploy = "--auto-deploy" in sys.argv[5:]
THREADS = 4

session = credentials.session(credentials_file)
config = botocore.config.Config(retries={"max_attempts": 0}, max_pool_connections=THREADS)
local = threading.local()


def client(service):
    """One client per thread and service (a boto3 client's connection pool is its own)."""
    key = f"c_{service}"
    if not hasattr(local, key):
        setattr(local, key, session.client(service, endpoint_url=endpoint, config=config))
    return getattr(local, key)


def parallel(fn, items):
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fn, items))


account = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]
source = (pathlib.Path(__file__).resolve().parent.parent / "examples/hello-api/index.mjs").read_text()
names = [f"scale-{i:04d}" for i in range(n_functions)]
timings = {}


def create_function(name):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.mjs", f"// {name}\n{source}")
    return client("lambda").create_function(
        FunctionName=name, Runtime="nodejs22.x", Handler="index.handler",
        Role=f"arn:aws:iam::{account}:role/{name}", Code={"ZipFile": buf.getvalue()},
    )["FunctionArn"]


t0 = time.perf_counter()
arns = parallel(create_function, names)
timings["create_functions_s"] = time.perf_counter() - t0

apigw = client("apigatewayv2")
t0 = time.perf_counter()
api_id = apigw.create_api(Name="scale-api", ProtocolType="HTTP", Target=arns[0])["ApiId"]
if not auto_deploy:
    apigw.update_stage(ApiId=api_id, StageName="$default", AutoDeploy=False)


def permit(name):
    client("lambda").add_permission(
        FunctionName=name, StatementId="scale-api", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:{account}:{api_id}/*",
    )


parallel(permit, names[1:])
timings["add_permissions_s"] = time.perf_counter() - t0


def integrate(arn):
    return client("apigatewayv2").create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn, PayloadFormatVersion="2.0",
    )["IntegrationId"]


t0 = time.perf_counter()
integrations = parallel(integrate, arns)
timings["create_integrations_s"] = time.perf_counter() - t0

# Ten routes per service; service k is served by function k mod FUNCTIONS.
TEMPLATES = [
    "GET /svc{k}/items",
    "POST /svc{k}/items",
    "GET /svc{k}/items/{{id}}",
    "PUT /svc{k}/items/{{id}}",
    "DELETE /svc{k}/items/{{id}}",
    "GET /svc{k}/items/{{id}}/tags",
    "GET /svc{k}/users/{{userId}}/orders/{{orderId}}",
    "ANY /svc{k}/files/{{proxy+}}",
    "GET /svc{k}/health",
    "ANY /svc{k}/{{proxy+}}",
]
routes = [(TEMPLATES[j % 10].format(k=j // 10), integrations[(j // 10) % n_functions]) for j in range(n_routes)]
per_batch, batches = max(1, n_routes // 10), []


def create_route(route):
    key, integration = route
    client("apigatewayv2").create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{integration}")


t0 = time.perf_counter()
for start in range(0, n_routes, per_batch):
    tb = time.perf_counter()
    parallel(create_route, routes[start:start + per_batch])
    batches.append(round((time.perf_counter() - tb) / len(routes[start:start + per_batch]) * 1000, 2))
if not auto_deploy:
    apigw.create_deployment(ApiId=api_id, StageName="$default")
timings["create_routes_s"] = time.perf_counter() - t0
# Milliseconds per CreateRoute in each tenth of the run: flat unless a route costs
# something proportional to the routes already there.
timings["create_route_ms_by_tenth"] = batches

# Everything is there, and answers through the gateway.
t0 = time.perf_counter()
count = sum(len(p["Functions"]) for p in client("lambda").get_paginator("list_functions").paginate())
count_routes = sum(len(p["Items"]) for p in apigw.get_paginator("get_routes").paginate(ApiId=api_id))
timings["list_s"] = time.perf_counter() - t0
if count < n_functions or count_routes != n_routes + 1:
    sys.exit(f"deployed {count} functions and {count_routes} routes, expected {n_functions}+ and {n_routes + 1}")
last = (n_routes - 1) // 10
samples = [f"/svc{last}/items/42?name=Dev", f"/svc{last // 2}/files/a/b/c.txt?name=Dev", "/svc0/health?name=Dev",
           "/nowhere/at/all?name=Dev"]
base = f"{endpoint}/execute-api/{api_id}"
for path in samples:
    for _ in range(100):  # a new function may still be Pending for a moment
        try:
            with urllib.request.urlopen(base + path, timeout=30) as r:
                body = r.read().decode()
            break
        except urllib.error.HTTPError as e:
            body = f"{e.code} {e.read()!r}"
            time.sleep(0.05)
    if body != '{"message":"Hello, Dev!"}':
        sys.exit(f"GET {base}{path}: unexpected answer {body}")
print(json.dumps({"api_id": api_id, "sample_path": samples[0], "functions_listed": count,
                  "routes_listed": count_routes, **timings}))
