// healthcheck-app: /health answers "ok" for the startup check in app.json; / answers hello.
const http = require('http');

const port = Number(process.env.PORT || 5000);
const release = process.env.SLIPWAY_RELEASE || 'unknown';
const commit = (process.env.SLIPWAY_COMMIT || 'unknown').slice(0, 7);

const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  const [status, body] = path === '/health' ? [200, 'ok\n']
    : path === '/' ? [200, `hello from ${process.env.SLIPWAY_APP || 'healthcheck-app'} release ${release} commit ${commit}\n`]
    : [404, 'not found\n'];
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(body);
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
