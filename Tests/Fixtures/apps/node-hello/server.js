// node-hello: Slipway's Node.js fixture. Routes:
//   /            hello line naming the release and commit
//   /health      503 "warming up" for WARMUP_SECONDS (env, default 0) after start, then 200 "ok"
//                (500 "sick" for good once /sick was called)
//   /sick        makes this instance's /health fail from now on, while / still answers
//   /exit        answers, then exits with status 1 (a crash)
//   /hog?mb=N    allocates and holds N MiB more, then answers how much it holds
//   /slow?ms=N   answers "slow done" after N ms
//   /env/NAME    the value of env var NAME (404 when unset)
//   /headers     the request's headers as JSON, as the app received them
//   /stream      server-sent events: "data: tick N" every 200 ms, five times
//   /ws          WebSocket echo (text frames), written by hand on node's http 'upgrade' event
// With ACCESS_LOG=1 it logs every request, as an app server's access log does.
const http = require('http');
const crypto = require('crypto');

const port = Number(process.env.PORT || 5000);
const release = process.env.SLIPWAY_RELEASE || 'unknown';
const commit = (process.env.SLIPWAY_COMMIT || 'unknown').slice(0, 7);
const warmUntil = Date.now() + Number(process.env.WARMUP_SECONDS || 0) * 1000;
let sick = false;
const held = [];

function text(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (process.env.ACCESS_LOG === '1') console.log(`${req.method} ${req.url}`);
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/') {
    text(res, 200, `hello from ${process.env.SLIPWAY_APP || 'node-hello'} release ${release} commit ${commit}\n`);
  } else if (url.pathname === '/headers') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  } else if (url.pathname === '/health') {
    if (sick) text(res, 500, 'sick\n');
    else if (Date.now() < warmUntil) text(res, 503, 'warming up\n');
    else text(res, 200, 'ok\n');
  } else if (url.pathname === '/sick') {
    sick = true;
    text(res, 200, 'feeling sick\n');
  } else if (url.pathname === '/exit') {
    text(res, 200, 'exiting\n');
    setTimeout(() => process.exit(1), 50);
  } else if (url.pathname === '/hog') {
    for (let i = 0; i < (Number(url.searchParams.get('mb')) || 0); i++) held.push(Buffer.alloc(1 << 20, 1));
    text(res, 200, `holding ${held.length} MiB\n`);
  } else if (url.pathname === '/slow') {
    setTimeout(() => text(res, 200, 'slow done\n'), Number(url.searchParams.get('ms')) || 0);
  } else if (url.pathname.startsWith('/env/')) {
    const value = process.env[decodeURIComponent(url.pathname.slice('/env/'.length))];
    if (value === undefined) text(res, 404, 'not set\n');
    else text(res, 200, value);
  } else if (url.pathname === '/stream') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    let tick = 0;
    const timer = setInterval(() => {
      tick += 1;
      res.write(`data: tick ${tick}\n\n`);
      if (tick === 5) { clearInterval(timer); res.end(); }
    }, 200);
    res.on('close', () => clearInterval(timer));
  } else {
    text(res, 404, 'not found\n');
  }
});

// --- WebSocket echo (RFC 6455), just enough for tests: text, ping and close frames. ---
const sockets = new Set();

function frame(opcode, payload) {
  const n = payload.length;
  let head;
  if (n < 126) head = Buffer.from([0, n]);
  else if (n < 65536) { head = Buffer.alloc(4); head[1] = 126; head.writeUInt16BE(n, 2); }
  else { head = Buffer.alloc(10); head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2); }
  head[0] = 0x80 | opcode;
  return Buffer.concat([head, payload]);
}

server.on('upgrade', (req, socket, head) => {
  const key = req.headers['sec-websocket-key'];
  if (new URL(req.url, 'http://localhost').pathname !== '/ws' || !key) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());

  let buf = Buffer.alloc(0);
  const onData = (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let offset = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); offset = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); offset = 10; }
      const mask = masked ? buf.subarray(offset, offset + 4) : null;
      if (masked) offset += 4;
      if (buf.length < offset + len) return;
      const payload = Buffer.from(buf.subarray(offset, offset + len));
      if (mask) for (let i = 0; i < len; i++) payload[i] ^= mask[i % 4];
      buf = buf.subarray(offset + len);
      if (opcode === 0x1) socket.write(frame(0x1, payload));
      else if (opcode === 0x9) socket.write(frame(0xa, payload));
      else if (opcode === 0x8) { socket.end(frame(0x8, payload.subarray(0, 2))); return; }
    }
  };
  socket.on('data', onData);
  if (head.length > 0) onData(head);
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));

// Stop accepting, let in-flight requests finish, close WebSockets with 1001 (going away), exit 0.
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return; // under `npm start` it can arrive twice: from the process group and from npm
  stopping = true;
  console.log('received SIGTERM, shutting down');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  for (const socket of sockets) socket.end(frame(0x8, Buffer.from([0x03, 0xe9])));
});
