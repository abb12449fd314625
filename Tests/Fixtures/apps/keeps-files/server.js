// Counts visits to /visit in the app's storage, and says where HOME, the working directory and its profile's tools are.
const fs = require("fs");
const http = require("http");
const storage = process.env.SLIPWAY_STORAGE;
http.createServer((request, response) => {
  const counter = `${storage}/visits`;
  // Health checks ask for /; a visit is counted at /visit only.
  const visits = (fs.existsSync(counter) ? Number(fs.readFileSync(counter, "utf8")) : 0) + (request.url === "/visit");
  fs.writeFileSync(counter, String(visits));
  response.setHeader("content-type", "application/json");
  response.end(JSON.stringify({
    release: process.env.SLIPWAY_RELEASE,
    home: process.env.HOME,
    cwd: process.cwd(),
    toolsFound: fs.existsSync(`${process.env.TOOLS_AT}/greet`),
    storage,
    migrations: fs.readFileSync(`${storage}/migrations.log`, "utf8").trim().split("\n"),
    visits,
  }));
}).listen(process.env.PORT, "127.0.0.1");
