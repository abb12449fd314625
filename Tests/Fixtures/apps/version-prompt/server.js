// version-prompt: Slipway's fixture for the new-version prompt. Routes:
//   /          an HTML page naming its release, with client.js included by one script tag
//   /no-sse    the same page in a browser without EventSource, so client.js falls back to long polls
// Each page records the `slipway:new-version` events it hears in window.heard.
const http = require('http');

const port = Number(process.env.PORT || 5000);
const release = process.env.SLIPWAY_RELEASE || 'unknown';

function page(withoutEventSource) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Shop</title></head>
<body style="font-family:system-ui,sans-serif;margin:3em">
<h1 id="release">Shop release ${release}</h1>
<p>Keep this tab open while a new release is deployed.</p>
<script>
  window.heard = [];
  window.addEventListener('slipway:new-version', (event) => window.heard.push(event.detail.version));
  ${withoutEventSource ? 'window.EventSource = undefined;' : ''}
</script>
<script src="/_slipway/client.js" defer></script>
</body>
</html>
`;
}

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/' || url.pathname === '/no-sse') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' });
    res.end(page(url.pathname === '/no-sse'));
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  }
}).listen(port, '127.0.0.1', () => console.log(`version-prompt listening on ${port}`));
