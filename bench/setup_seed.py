"""Creates the seed's function and quick-creates its HTTP API on a running Portico.

Usage: setup_seed.py ENDPOINT CREDENTIALS_FILE  ->  prints the API id.

CREDENTIALS_FILE is the server's `<data-dir>/credentials` (the administrator key its
first start wrote), or any shared-credentials file whose `default` profile holds a key
made with `portico keys create`; it defaults to $AWS_SHARED_CREDENTIALS_FILE.
"""
import io
import os
import pathlib
import sys
import time
import zipfile

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
import credentials  # noqa: E402

endpoint = sys.argv[1]
credentials_file = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
if not credentials_file:
    sys.exit("usage: setup_seed.py ENDPOINT CREDENTIALS_FILE (the server's <data-dir>/credentials)")
session = credentials.session(credentials_file)
lam = session.client("lambda", endpoint_url=endpoint)
apigw = session.client("apigatewayv2", endpoint_url=endpoint)

source = pathlib.Path(__file__).resolve().parent.parent / "examples/hello-api/index.mjs"
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.write(source, "index.mjs")
account = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]
fn = lam.create_function(
    FunctionName="hello-api",
    Runtime="nodejs22.x",
    Role=f"arn:aws:iam::{account}:role/hello-api-role",
    Handler="index.handler",
    Code={"ZipFile": buf.getvalue()},
)
for _ in range(100):
    if lam.get_function(FunctionName="hello-api")["Configuration"]["State"] == "Active":
        break
    time.sleep(0.05)
api = apigw.create_api(Name="hello-http-api", ProtocolType="HTTP", Target=fn["FunctionArn"])
print(api["ApiId"])
