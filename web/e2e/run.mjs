// End to end in Debian's Chromium, driven by playwright-core (no browser download).
//
//   node e2e/run.mjs <dashboard URL> <username> <password> <output dir>
//
// Logs in through the form, sees the server list, reloads (the session comes back from its
// cookie, with nothing in localStorage), scans the pages with axe-core, checks that no page
// broke the Content-Security-Policy, logs out, and keeps a screenshot of each page in the
// output directory. Prints one JSON line of measurements; exits non-zero on the first failed
// check.

import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, username, password, out] = process.argv.slice(2);
if (!url || !username || !password || !out) {
  console.error("usage: node e2e/run.mjs <url> <username> <password> <output dir>");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * axe-core's WCAG 2 A and AA rules on the page as it stands; the serious and critical
 * violations, as "rule: target" lines. (Evaluated through the browser's debugging protocol,
 * which the page's policy does not govern, so no inline script is needed.)
 */
async function accessibilityProblems(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21aa"] }),
  );
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${name}: ${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** Waits for the server list: its table, or the line that says there is none. */
function listed(page) {
  return page.locator("table").or(page.getByText("No servers yet.")).first().waitFor();
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("console", (message) => {
    // The browser logs every 4xx answer; a refused login (401) is one the test asks for.
    const refusedLogin = /Failed to load resource: .* status of 401/.test(message.text());
    if (message.type() === "error" && !refusedLogin) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(String(error)));

  const started = Date.now();
  await page.goto(url);
  await page.getByLabel("Username or email").waitFor();
  const loginShown = Date.now() - started;
  await page.screenshot({ path: join(out, "login.png"), fullPage: true });
  const a11y = await accessibilityProblems(page, "login");

  // A wrong password is said so, next to the form.
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").waitFor();
  check((await page.getByRole("alert").textContent()).includes("invalid"), "a wrong password is reported");

  await page.getByLabel("Password").fill(password);
  const loginAt = Date.now();
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Servers" }).waitFor();
  await listed(page);
  const listShown = Date.now() - loginAt;
  await page.screenshot({ path: join(out, "servers.png"), fullPage: true });
  a11y.push(...(await accessibilityProblems(page, "servers")));

  // Nothing secret is kept where scripts (or other tabs) could read it later.
  const stored = await page.evaluate(() => ({
    local: Object.keys(localStorage).length,
    session: Object.keys(sessionStorage).length,
    cookies: document.cookie,
  }));
  check(stored.local === 0 && stored.session === 0, "nothing in web storage");
  check(!stored.cookies.includes("vps_refresh"), "the refresh cookie is HttpOnly");

  // A reload resumes the session from the cookie; the list is back within a second.
  const reloadAt = Date.now();
  await page.reload();
  await page.getByRole("heading", { name: "Servers" }).waitFor();
  await listed(page);
  const reloadShown = Date.now() - reloadAt;
  const rows = await page.locator("tbody tr").count();
  const statuses = await page.locator("tbody .status").allTextContents();

  // On a phone's screen the page still fits.
  await page.setViewportSize({ width: 390, height: 780 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page fits a phone's width (overflow ${overflow}px)`);
  await page.screenshot({ path: join(out, "servers-phone.png"), fullPage: true });

  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByLabel("Username or email").waitFor();
  await page.reload();
  await page.getByLabel("Username or email").waitFor();

  check(a11y.length === 0, `no serious accessibility violations: ${a11y.join(" | ")}`);
  check(problems.length === 0, `no console errors or policy violations: ${problems.join(" | ")}`);
  console.log(JSON.stringify({ loginShown, listShown, reloadShown, rows, statuses }));
} finally {
  await browser.close();
}
