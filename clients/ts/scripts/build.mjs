// Generates the types from the frontend's OpenAPI description and builds
// the bundles, or (check) fails when what is committed differs from what
// they would be now: the client cannot drift from the server's contract
// nor the page from the client's sources.
//
//   node scripts/build.mjs generate   src/schema.ts from openapi.yaml
//   node scripts/build.mjs dist       dist/quickmatch.js (ES module, for Node and bundlers) and
//                                     dist/quickmatch.page.js (an IIFE, global quickmatch): what
//                                     npm test tests, leaving the Go tree alone
//   node scripts/build.mjs build      dist, and the page's copy of the IIFE in the Go tree
//   node scripts/build.mjs check      the types and the page's copy compared with what is on disk
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import * as esbuild from "esbuild";
import openapiTS, { astToString } from "openapi-typescript";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const repo = path.resolve(root, "../..");
const openapi = path.join(repo, "services/frontend/internal/api/openapi.yaml");
const schemaFile = path.join(root, "src/schema.ts");
// The page's copy lives in the Go tree, embedded with go:embed, so that
// go build needs no npm.
const pageBundle = path.join(repo, "services/frontend/internal/api/page/quickmatch.js");
const esmBundle = path.join(root, "dist/quickmatch.js");
const iifeBundle = path.join(root, "dist/quickmatch.page.js");

const banner = "// Code generated from clients/ts by `npm run build`; DO NOT EDIT.";

async function schema() {
  const ast = await openapiTS(new URL(`file://${openapi}`));
  return `// Code generated from services/frontend/internal/api/openapi.yaml by \`npm run generate\`; DO NOT EDIT.\n${astToString(ast)}`;
}

async function bundle(format) {
  const out = await esbuild.build({
    entryPoints: [path.join(root, "src/index.ts")],
    bundle: true,
    write: false,
    format,
    globalName: format === "iife" ? "quickmatch" : undefined,
    target: ["es2020"],
    // browser: "</script" in strings is escaped, so the page can inline it.
    platform: "browser",
    legalComments: "none",
    banner: { js: banner },
    logLevel: "warning",
  });
  return out.outputFiles[0].text;
}

async function same(file, want) {
  let have = "";
  try {
    have = await readFile(file, "utf8");
  } catch {}
  if (have === want) return true;
  console.error(`${path.relative(repo, file)} is not what the sources give: run \`npm run generate && npm run build\` in clients/ts and commit the result`);
  return false;
}

const cmd = process.argv[2];
if (cmd === "generate") {
  await writeFile(schemaFile, await schema());
} else if (cmd === "dist" || cmd === "build") {
  await mkdir(path.dirname(esmBundle), { recursive: true });
  await writeFile(esmBundle, await bundle("esm"));
  const iife = await bundle("iife");
  await writeFile(iifeBundle, iife);
  // Only build writes into the Go tree: a test run must not change an
  // embedded file behind its author's back.
  if (cmd === "build") await writeFile(pageBundle, iife);
} else if (cmd === "check") {
  const ok = [await same(schemaFile, await schema()), await same(pageBundle, await bundle("iife"))];
  if (ok.includes(false)) process.exit(1);
  console.log("clients/ts: the types match openapi.yaml, the page's bundle matches the sources");
} else {
  console.error("usage: node scripts/build.mjs generate|dist|build|check");
  process.exit(2);
}
