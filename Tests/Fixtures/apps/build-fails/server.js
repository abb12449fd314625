// build-fails: never runs, because `npm run build` fails during the build.
const http = require('http');

const port = Number(process.env.PORT || 5000);
const release = process.env.SLIPWAY_RELEASE || 'unknown';
const commit = (process.env.SLIPWAY_COMMIT || 'unknown').slice(0, 7);

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`hello from ${process.env.SLIPWAY_APP || 'build-fails'} release ${release} commit ${commit}\n`);
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
