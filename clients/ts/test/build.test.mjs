// npm test builds what it tests into dist/ only: the page's copy of the
// bundle (services/frontend/internal/api/page/quickmatch.js, embedded in
// the frontend) is written by npm run build alone. Runs the build step of
// package.json's test script on a copy of the layout, so this run's own
// dist/ and the Go tree are not touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const page = "services/frontend/internal/api/page/quickmatch.js";

// layout is a repository of the client alone: clients/ts with its
// sources, scripts and packages.
function layout(t) {
  const repo = mkdtempSync(path.join(tmpdir(), "quickmatch-build-"));
  t.after(() => rmSync(repo, { recursive: true, force: true }));
  const ts = path.join(repo, "clients/ts");
  for (const d of ["src", "scripts"]) cpSync(path.join(root, d), path.join(ts, d), { recursive: true });
  cpSync(path.join(root, "package.json"), path.join(ts, "package.json"));
  symlinkSync(path.join(root, "node_modules"), path.join(ts, "node_modules"));
  mkdirSync(path.join(repo, path.dirname(page)), { recursive: true });
  return { repo, ts };
}

test("npm test's build step writes dist/ and leaves the page's bundle alone; npm run build writes it", { timeout: 60_000 }, (t) => {
  const { scripts } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  const [buildStep, rest] = scripts.test.split(" && ");
  assert.match(rest ?? "", /^node --test /, `package.json's test script: ${scripts.test}`);
  const { repo, ts } = layout(t);
  execSync(buildStep, { cwd: ts, stdio: "pipe" });
  assert.ok(existsSync(path.join(ts, "dist/quickmatch.js")), "the ES module is built");
  assert.ok(existsSync(path.join(ts, "dist/quickmatch.page.js")), "the page's bundle is built into dist/");
  assert.ok(!existsSync(path.join(repo, page)), `npm test wrote ${page}`);

  execSync(scripts.build, { cwd: ts, stdio: "pipe" });
  assert.equal(readFileSync(path.join(repo, page), "utf8"), readFileSync(path.join(ts, "dist/quickmatch.page.js"), "utf8"));
});
