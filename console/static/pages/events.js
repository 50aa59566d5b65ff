// Test-event templates in the shape Portico's gateway sends (payload formats 2.0 and 1.0).

export function apiGatewayEvent(version) {
  const now = new Date();
  const time = now.toISOString();
  if (version === '2.0') {
    return {
      version: '2.0',
      routeKey: 'GET /hello',
      rawPath: '/hello',
      rawQueryString: 'name=Dev',
      headers: { accept: '*/*', host: 'abcdef1234.execute-api.localhost', 'user-agent': 'curl/8.5.0' },
      queryStringParameters: { name: 'Dev' },
      requestContext: {
        accountId: '123456789012',
        apiId: 'abcdef1234',
        domainName: 'abcdef1234.execute-api.localhost',
        domainPrefix: 'abcdef1234',
        http: { method: 'GET', path: '/hello', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'curl/8.5.0' },
        requestId: 'JYxQ8gHAoAMEbkQ=',
        routeKey: 'GET /hello',
        stage: '$default',
        time,
        timeEpoch: now.getTime(),
      },
      isBase64Encoded: false,
    };
  }
  return {
    version: '1.0',
    resource: '/hello',
    path: '/hello',
    httpMethod: 'GET',
    headers: { accept: '*/*', host: 'abcdef1234.execute-api.localhost', 'user-agent': 'curl/8.5.0' },
    multiValueHeaders: { accept: ['*/*'], host: ['abcdef1234.execute-api.localhost'], 'user-agent': ['curl/8.5.0'] },
    queryStringParameters: { name: 'Dev' },
    multiValueQueryStringParameters: { name: ['Dev'] },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abcdef1234',
      domainName: 'abcdef1234.execute-api.localhost',
      domainPrefix: 'abcdef1234',
      extendedRequestId: 'JYxQ8gHAoAMEbkQ=',
      httpMethod: 'GET',
      identity: { sourceIp: '127.0.0.1', userAgent: 'curl/8.5.0' },
      path: '/hello',
      protocol: 'HTTP/1.1',
      requestId: 'JYxQ8gHAoAMEbkQ=',
      requestTime: now.toUTCString(),
      requestTimeEpoch: now.getTime(),
      resourcePath: '/hello',
      stage: '$default',
    },
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
  };
}
