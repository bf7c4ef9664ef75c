// Writes a gzip beside every built file worth compressing; the gateway sends it to browsers
// that accept gzip, so nothing is compressed per request.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const compressible = /\.(js|css|html|svg|json|txt)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (compressible.test(name)) {
      const data = readFileSync(path);
      const zipped = gzipSync(data, { level: 9 });
      if (zipped.length < data.length) writeFileSync(`${path}.gz`, zipped);
    }
  }
}

walk(new URL("../dist", import.meta.url).pathname);
