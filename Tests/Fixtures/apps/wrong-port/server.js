// wrong-port: the classic mistake of a Flask app run with app.run(): it listens on a port of its own choosing
// (here one the kernel picks, standing in for 5000), never on $PORT.
const http = require('http');
const server = http.createServer((req, res) => res.end('hello\n'));
server.listen(0, '127.0.0.1', () => console.log(` * Running on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
