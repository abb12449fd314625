// slow-boot: warms up for WARMUP_SECONDS (default 4) before it listens, like an app loading a cache.
const http = require('http');

const port = Number(process.env.PORT || 5000);
const release = process.env.SLIPWAY_RELEASE || 'unknown';
const commit = (process.env.SLIPWAY_COMMIT || 'unknown').slice(0, 7);
const warmupSetting = Number(process.env.WARMUP_SECONDS || 4);
const warmup = Number.isFinite(warmupSetting) ? warmupSetting : 4;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`hello from ${process.env.SLIPWAY_APP || 'slow-boot'} release ${release} commit ${commit}\n`);
});

let remaining = warmup;
let warming = null;
function warm() {
  if (remaining <= 0) {
    server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
    return;
  }
  console.log('warming up...');
  const step = Math.min(1, remaining);
  remaining -= step;
  warming = setTimeout(warm, step * 1000);
}
warm();

process.on('SIGTERM', () => {
  console.log('received SIGTERM, shutting down');
  clearTimeout(warming);
  if (server.listening) server.close(() => process.exit(0));
  else process.exit(0);
});
