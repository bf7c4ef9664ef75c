// Writes a gzip beside every built file worth compressing (the gateway sends it to browsers
// that accept gzip, so nothing is compressed per request), then holds the first page to its
// budget: the JavaScript that index.html loads, at most 150 KB gzipped.
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 150 * 1024;
const dist = new URL("../dist", import.meta.url).pathname;
const compressible = /\.(js|css|html|svg|json|txt)$/;
const zippedSize = new Map();

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (compressible.test(name)) {
      const data = readFileSync(path);
      const zipped = gzipSync(data, { level: 9 });
      zippedSize.set(path.slice(dist.length), zipped.length);
      if (zipped.length < data.length) writeFileSync(`${path}.gz`, zipped);
    }
  }
}

walk(dist);
const index = readFileSync(join(dist, "index.html"), "utf8");
const scripts = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const firstPage = scripts.reduce((sum, path) => sum + (zippedSize.get(path) ?? 0), 0);
console.log(`first page JavaScript: ${(firstPage / 1024).toFixed(1)} KB gzipped (${scripts.join(", ")})`);
if (scripts.length === 0 || firstPage > BUDGET) {
  console.error(`over the budget of ${BUDGET / 1024} KB, or no script found in index.html`);
  process.exit(1);
}
