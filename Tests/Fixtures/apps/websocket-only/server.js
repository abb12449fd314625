// websocket-only: a server that speaks nothing but WebSocket. A plain GET gets 426 Upgrade Required; an upgrade
// gets a greeting frame naming the release.
const http = require('http');
const crypto = require('crypto');

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Upgrade': 'websocket', 'Connection': 'Upgrade', 'Content-Type': 'text/plain' });
  res.end('this server only speaks WebSocket\n');
});

server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'] || '';
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const text = Buffer.from(`hello over websocket from ${process.env.SLIPWAY_RELEASE}`);
  socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
  socket.on('error', () => socket.destroy());
});

server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
