// worker (laid over node-hello): a queue worker with no port. Says when it starts and when SIGTERM
// stops it, so a test can see that an old worker ended before a new one began.
const release = process.env.SLIPWAY_RELEASE || 'v?';
console.log(`worker ${release} started`);
const timer = setInterval(() => console.log(`worker ${release} working`), 1000);
process.on('SIGTERM', () => {
  console.log(`worker ${release} stopping`);
  clearInterval(timer);
  process.exit(0);
});
