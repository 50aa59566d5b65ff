// The baseline: the seed's handler served by a bare single-process Node.js server,
// with only what the handler needs from the request (the query string).
// CommonJS, the fastest way Node starts a hand-written server (an ES module entry point
// costs ~20 ms more to start); the handler's own ES module is loaded with require(),
// which Node 22 supports.
// Usage: node hello-server.cjs PORT
"use strict";
const http = require("node:http");
const { handler } = require("../../examples/hello-api/index.mjs");

const port = Number(process.argv[2] ?? 0);
const server = http.createServer(async (req, res) => {
  const q = req.url.indexOf("?");
  const queryStringParameters = q < 0 ? undefined : Object.fromEntries(new URLSearchParams(req.url.slice(q + 1)));
  const out = await handler({ rawPath: q < 0 ? req.url : req.url.slice(0, q), queryStringParameters });
  res.writeHead(out.statusCode, out.headers);
  res.end(out.body);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
