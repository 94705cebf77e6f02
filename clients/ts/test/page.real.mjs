// The find-a-match page of a real frontend in headless Chromium: the
// page as the frontend renders it, with the client's bundle it carries.
// Run by the Go test TestFindAMatchPageInChromium
// (services/frontend/internal/api/client_ts_test.go), which starts the
// frontend (identity off, so the page sends no token) and plays the
// matcher and allocator for "allocate <ticket id> <player>" lines.
// QUICKMATCH_URL is the frontend; CHROMIUM the browser, else chromium on PATH.
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";

const url = process.env.QUICKMATCH_URL;
assert.ok(url, "QUICKMATCH_URL must be set");
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  // The game server is not there: its page is answered here.
  await page.setRequestInterception(true);
  page.on("request", (r) => (r.url().includes("/play?") ? r.respond({ status: 200, contentType: "text/html", body: "<p>playing</p>" }) : r.continue()));
  const status = (want) => page.waitForFunction((w) => document.getElementById("status").textContent.includes(w), { timeout: 20_000 }, want);
  await page.goto(url + "/");
  await page.waitForSelector("#go");
  await page.$eval("#player", (el) => (el.value = "page-one"));

  console.log("step: queue, then cancel");
  await page.click("#go");
  await status("Waiting for an opponent in eu/");
  assert.equal(await page.$eval("#player", (el) => el.disabled), true, "the player is fixed while queued (its token)");
  await page.click("#cancel");
  await status("Cancelled.");
  assert.equal(await page.$eval("#go", (el) => el.disabled), false);

  console.log("step: queue again, get matched and sent to the game");
  const created = page.waitForResponse((r) => r.url().endsWith("/v1/tickets") && r.request().method() === "POST");
  await page.click("#go");
  const ticket = await (await created).json();
  assert.equal(ticket.status, "queued");
  await status("Waiting for an opponent");
  console.log(`allocate ${ticket.ticket_id} page-one`);
  await page.waitForFunction(() => location.href.includes("/play?room=m1"), { timeout: 20_000 });
  console.log("ok: the page queued, cancelled, and followed a ticket to its game");
} finally {
  await browser.close();
}
