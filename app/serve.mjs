// Serves the app's build (a folder of static files) on 127.0.0.1, with the MIME types the
// browser needs (application/wasm for streaming compilation) and revalidation (ETag), so the
// worker's load of the page's module is answered from the browser's cache. No file watcher.
//   node app/serve.mjs [DIR] [--port N]     (port 0 picks a free one)
// The browser tests import `serve` from here.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const MIME = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm", ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** The file a request names inside `root`, or null; a path without an extension is the page. */
function resolve(root, pathname) {
  let relative;
  try {
    relative = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const file = path.join(root, relative);
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  if (fs.existsSync(file) && fs.statSync(file).isFile()) return file;
  return path.extname(file) === "" ? path.join(root, "index.html") : null;
}

/** Serves `dir` on 127.0.0.1:`port`; resolves to the server and its origin. `onRequest` sees
 * every request's path. */
export async function serve(dir, port = 0, onRequest = () => {}) {
  const root = path.resolve(dir);
  if (!fs.existsSync(path.join(root, "index.html"))) throw new Error(`${root}: no index.html (build the app first: bash app/build.sh)`);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    onRequest(url.pathname);
    const file = resolve(root, url.pathname);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${url.pathname}\n`);
      return;
    }
    const stat = fs.statSync(file);
    const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const headers = { "content-type": MIME[path.extname(file)] ?? "application/octet-stream", etag, "cache-control": "no-cache" };
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, { ...headers, "content-length": stat.size });
    if (req.method === "HEAD") res.end();
    else fs.createReadStream(file).on("error", () => res.destroy()).pipe(res);
  });
  await new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", done);
  });
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf("--port");
  const port = portAt >= 0 ? Number(args.splice(portAt, 2)[1]) : 8080;
  const dir = args[0] ?? "dist";
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: --port: expected a port number from 0 to 65535`);
    process.exit(2);
  }
  try {
    const { origin } = await serve(dir, port);
    console.log(`HaF-RM Studio: serving ${path.resolve(dir)} on ${origin}/ (Ctrl-C stops)`);
  } catch (e) {
    console.error(`serve: ${e.code === "EADDRINUSE" ? `port ${port} is in use (PORT=9000 bash app/serve.sh picks another)` : e.message}`);
    process.exit(1);
  }
}
