// never-healthy: listens, but answers 500 on every path forever, so its startup check never passes; each request
// logs the same traceback, as a real app whose database is down does.
const http = require('http');

const port = Number(process.env.PORT || 5000);

const server = http.createServer((req, res) => {
  console.log('Traceback (most recent call last):');
  console.log('  File "app.py", line 12, in index');
  console.log('ConnectionRefusedError: the database is unreachable');
  res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end('not ready\n');
});

console.log('starting, but the database is unreachable');
server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));

process.on('SIGTERM', () => server.close(() => process.exit(0)));
