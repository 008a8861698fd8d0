// Swagger UI for /docs and /v1/uploads/docs, served locally (serve/pages.py): the two files the
// page needs and a favicon, copied from npm's swagger-ui-dist into the Python package.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const dist = dirname(require.resolve("swagger-ui-dist/package.json"));
const out = new URL("../../serve/static/swagger/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"]) {
  copyFileSync(join(dist, name), join(out, name));
}
const { version } = JSON.parse(readFileSync(join(dist, "package.json"), "utf8"));
console.log(`swagger-ui-dist ${version} -> ${out}`);
