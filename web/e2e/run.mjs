// End to end in Debian's Chromium, driven by playwright-core (no browser download).
//
//   node e2e/run.mjs <dashboard URL> <output dir>
//
// with the accounts in the environment: E2E_USER / E2E_PASSWORD (a customer with credits and
// one running server) and E2E_ADMIN / E2E_ADMIN_PASSWORD (an administrator).
//
// The customer logs in, sees the list (and again after a reload, from the cookie alone),
// orders a server and watches it turn running on the live feed, opens a console and runs a
// command, takes a snapshot, changes a file and rolls back, mints an API token whose secret
// is shown once, and opens a support ticket. An administrator adds credits to the customer
// and reads every operator page; a second device is logged out everywhere. Every page is
// scanned with axe-core, kept as a screenshot in the output directory, and must fit a phone's
// width; no page may log an error or break the Content-Security-Policy. Prints one JSON line
// of measurements; exits non-zero at the first failed check.

import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, out] = process.argv.slice(2);
const { E2E_USER: user, E2E_PASSWORD: password, E2E_ADMIN: admin, E2E_ADMIN_PASSWORD: adminPassword } = process.env;
if (!url || !out || !user || !password || !admin || !adminPassword) {
  console.error("usage: E2E_USER=.. E2E_PASSWORD=.. E2E_ADMIN=.. E2E_ADMIN_PASSWORD=.. node e2e/run.mjs <url> <output dir>");
  process.exit(2);
}
const base = url.replace(/\/$/, "");
mkdirSync(out, { recursive: true });

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const SLOW = { timeout: 90_000 };

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const problems = [];
/** Answers of 400 or more that the run does not ask for. */
const failures = [];
/**
 * The ones it does: the wrong password, a logged-out device's refresh, and a server with no
 * backup schedule (the API's 404 for "none").
 */
const EXPECTED = [
  /^401 POST \/api\/auth\/session$/,
  /^401 POST \/api\/auth\/session\/refresh$/,
  /^404 GET \/api\/server\/\d+\/backups\/schedule$/,
  // The add that lost to another operator's (below).
  /^412 PUT \/api\/admin\/plans\/\d+$/,
];
const a11y = [];
const measured = {};
const shots = [];

/**
 * axe-core's WCAG 2 A and AA rules on the page as it stands; the serious and critical
 * violations are kept as "page: rule: target" lines. (Evaluated through the browser's
 * debugging protocol, which the page's policy does not govern, so no inline script is needed.)
 */
async function scan(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21aa"] }));
  for (const v of result.violations) {
    if (v.impact === "serious" || v.impact === "critical") {
      a11y.push(`${name}: ${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    }
  }
}

/** Screenshot, accessibility scan and a phone-width check of the page as it stands. */
async function visit(page, name) {
  await scan(page, name);
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  shots.push(`${name}.png`);
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 780 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `${name} fits a phone's width (overflow ${overflow}px)`);
  await page.setViewportSize(size);
}

async function open(context) {
  const page = await context.newPage();
  page.on("console", (message) => {
    // The browser logs every answer of 400 or more; those are judged below by their URL.
    const answer = /^Failed to load resource: the server responded with a status of/.test(message.text());
    if (message.type() === "error" && !answer) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(String(error)));
  page.on("response", (response) => {
    const answer = `${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`;
    if (response.status() >= 400 && !EXPECTED.some((e) => e.test(answer))) failures.push(answer);
  });
  return page;
}

async function login(page, name, secret) {
  await page.getByLabel("Username or email").fill(name);
  await page.getByLabel("Password").fill(secret);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Servers" }).waitFor();
}

/** The server list: its table, or the line that says there is none. */
const listed = (page) => page.locator("table.servers").or(page.getByText("No servers yet.")).first().waitFor();
const tab = (page, name) => page.getByRole("navigation", { name: "Server" }).getByRole("link", { name }).click();
const statusOf = (page) => page.getByTestId("server-status");

/** Types a command into the open console and waits for `expect` in what it prints. */
async function run(page, command, expect) {
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(command);
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    (want) => document.querySelector("[data-testid=terminal] .xterm-rows")?.textContent.includes(want),
    expect,
    SLOW,
  );
}

/**
 * Does `act`, then waits for the task it began to succeed: the task line names a different
 * task than before, in state `succeeded`.
 */
async function completes(page, act) {
  const line = page.getByTestId("task");
  const before = (await line.count()) ? await line.getAttribute("data-task") : "";
  await act();
  await page.locator(`[data-testid=task][data-state=succeeded]:not([data-task="${before}"])`).waitFor(SLOW);
}

async function openConsole(page) {
  await tab(page, "Console");
  await page.getByRole("button", { name: "Open console" }).click();
  await page.getByText("Connected").waitFor(SLOW);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await open(context);

  // Log in: a wrong password is said so next to the form; the right one shows the list.
  let at = Date.now();
  await page.goto(base);
  await page.getByLabel("Username or email").waitFor();
  measured.loginShown = Date.now() - at;
  await visit(page, "login");
  await page.getByLabel("Username or email").fill(user);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").waitFor();
  check((await page.getByRole("alert").textContent()).includes("invalid"), "a wrong password is reported");
  at = Date.now();
  await login(page, user, password);
  await listed(page);
  measured.listShown = Date.now() - at;
  await visit(page, "servers");

  // Nothing secret is kept where scripts (or other tabs) could read it later.
  const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookies: document.cookie }));
  check(stored.local === 0 && stored.session === 0, "nothing in web storage");
  check(!stored.cookies.includes("vps_refresh"), "the refresh cookie is HttpOnly");

  // A reload resumes the session from the cookie.
  at = Date.now();
  await page.reload();
  await listed(page);
  measured.reloadShown = Date.now() - at;
  measured.rows = await page.locator("table.servers tbody tr").count();
  const first = page.locator("table.servers tbody tr").first();
  const firstName = await first.locator("td a").textContent();
  check((await first.locator(".status").textContent()) === "running", "the customer's server is running");

  // Order a server: plans with prices, the balance, the root password once; then watch
  // the list, which only the live feed updates, until the new server runs.
  await page.getByRole("link", { name: "Order a server" }).click();
  await page.getByRole("button", { name: "Order server" }).waitFor();
  check(/\d+\.\d\d/.test(await page.getByTestId("balance").textContent()), "the balance is shown");
  check((await page.getByText(/a month/).count()) > 0, "plans show their prices");
  await visit(page, "order");
  await page.getByLabel("Name (optional)").fill("ordered-1");
  at = Date.now();
  await page.getByRole("button", { name: "Order server" }).click();
  const rootPassword = await page.getByTestId("root-password").textContent();
  check(rootPassword.length >= 12, "the root password is shown once");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Servers" }).click();
  const ordered = page.locator("table.servers tbody tr", { hasText: "ordered-1" });
  await ordered.waitFor();
  await ordered.locator(".status", { hasText: /^running$/ }).waitFor(SLOW);
  measured.orderToRunning = Date.now() - at;
  check(!(await page.content()).includes(rootPassword), "the root password is not shown again");

  // The running server's page: details, gauges, graphs.
  await page.getByRole("link", { name: firstName }).click();
  await statusOf(page).waitFor();
  await visit(page, "server");
  await tab(page, "Graphs");
  await page.getByLabel("Period").waitFor();
  await page.getByLabel("Period").selectOption("day");
  await visit(page, "server-graphs");

  // The console: a command runs in the guest and its output comes back.
  await openConsole(page);
  await run(page, "echo $((6*7))-from-the-console", "42-from-the-console");
  await visit(page, "server-console");

  // A snapshot, a change after it, a rollback: the change is gone.
  await tab(page, "Snapshots");
  await page.getByLabel("Name", { exact: true }).fill("before-change");
  await completes(page, () => page.getByRole("button", { name: "Take snapshot" }).click());
  await page.locator("tr[data-snapshot=before-change]", { hasText: "completed" }).waitFor(SLOW);
  await visit(page, "server-snapshots");
  await openConsole(page);
  await run(page, "echo changed > /after-snapshot && echo $((2+3))-written", "5-written");
  await tab(page, "Snapshots");
  await page.getByRole("button", { name: "Roll back to before-change" }).click();
  await completes(page, () => page.getByRole("button", { name: "Roll back", exact: true }).click());
  await statusOf(page).filter({ hasText: /^running$/ }).waitFor(SLOW);
  await openConsole(page);
  await run(page, "test -e /after-snapshot && echo still-there || echo gone-$((40+2))", "gone-42");

  await tab(page, "Backups");
  await page.getByRole("button", { name: "Save schedule" }).waitFor();
  await visit(page, "server-backups");
  await tab(page, "Manage");
  await page.getByRole("heading", { name: "Resize" }).waitFor();
  await visit(page, "server-manage");

  // A new root password: shown once, gone when dismissed.
  await completes(page, () => page.getByRole("button", { name: "Reset root password" }).click());
  const newPassword = (await page.getByTestId("new-password").textContent()).trim();
  check(newPassword.length >= 12 && newPassword !== rootPassword, "a new root password is shown");
  await page.getByRole("button", { name: "I have saved it" }).click();
  check(!(await page.content()).includes(newPassword), "the new password is not shown again");

  // An API token: its secret once, then only its hint. The secret works.
  await page.getByRole("link", { name: "API tokens" }).click();
  await page.getByRole("button", { name: "Create token" }).waitFor();
  await visit(page, "tokens");
  await page.getByLabel("Name").fill("from-the-browser");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.getByTestId("token-secret").textContent()).trim();
  const token = secret.match(/[A-Za-z0-9_-]{20,}/)?.[0];
  check(token, `a token secret is shown: ${secret}`);
  const listing = await fetch(`${base}/api/v1/servers/`, { headers: { authorization: `Bearer ${token}` } });
  check(listing.status === 200, `the new token works (${listing.status})`);
  check((await listing.json()).count === measured.rows + 1, "and sees the customer's servers");
  await page.getByRole("button", { name: "Done" }).click();
  await page.getByTestId("token-secret").waitFor({ state: "detached" });
  await page.reload();
  await page.getByText("from-the-browser").first().waitFor();
  check(!(await page.content()).includes(token), "the secret is not shown again");

  // A support ticket, and the account's other pages.
  await page.getByRole("link", { name: "Support" }).click();
  await page.getByLabel("Subject").waitFor();
  await page.getByLabel("Subject").fill("Help from the browser");
  await page.getByLabel("Message").fill("My server needs a bigger disk.");
  await page.getByRole("button", { name: /open ticket|send|submit/i }).click();
  await page.getByText("Help from the browser").first().waitFor();
  await visit(page, "tickets");
  for (const [link, name, ready] of [
    ["Billing", "billing", "Balance"],
    ["Webhooks", "webhooks", "URL"],
    ["Settings", "settings", "Save"],
  ]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link }).click();
    await page.getByText(ready).first().waitFor();
    await visit(page, name);
  }
  await page.getByRole("button", { name: "Log out", exact: true }).click();
  await page.getByLabel("Username or email").waitFor();

  // An administrator adds credits to the customer and reads the operator pages.
  await login(page, admin, adminPassword);
  await page.getByRole("link", { name: "Users" }).click();
  const row = page.locator("tr", { hasText: user });
  await row.getByRole("button", { name: /manage/i }).click();
  await page.getByLabel("Amount").fill("25.00");
  await page.getByLabel("Reason").fill("Top-up from the browser");
  await page.getByRole("button", { name: "Add credits" }).click();
  measured.balanceAfterCredits = (await page.getByTestId("user-balance").filter({ hasText: /\d/ }).textContent()).trim();
  await page.getByText("Top-up from the browser").first().waitFor();
  await visit(page, "admin-users");
  for (const [link, name, ready] of [
    ["Nodes", "admin-nodes", "lxc"],
    ["Catalog", "admin-catalog", "Plans"],
    ["All servers", "admin-servers", "ordered-1"],
    ["Mails", "admin-mails", "Mails"],
    ["Ticket queue", "admin-tickets", "Help from the browser"],
  ]) {
    await page.getByRole("link", { name: link }).click();
    await page.getByText(ready).first().waitFor();
    await visit(page, name);
  }

  // Two operators add a plan with the id the page offers: the later add is refused, not
  // written over the other's, and the page says so and shows the other's plan.
  await page.getByRole("link", { name: "Catalog" }).click();
  const addPlan = page.getByRole("form", { name: "Add a plan" });
  const offered = Number((await addPlan.getByText(/It gets id \d+\./).textContent()).match(/\d+/)[0]);
  const session = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ login: admin, password: adminPassword }),
  });
  const { accessToken } = await session.json();
  const theirs = await fetch(`${base}/api/admin/plans/${offered}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json", "if-none-match": "*" },
    body: JSON.stringify({ name: "Added elsewhere", vcpus: 1, memory: 512, disk: 5, price: 500 }),
  });
  check(theirs.status === 200, `the other operator's add is taken (${theirs.status})`);
  await page.locator("#plan-new-name").fill("Added here");
  await page.locator("#plan-new-price").fill("6.00");
  await addPlan.getByRole("button", { name: "Add plan" }).click();
  await addPlan.getByText(/Another operator added a plan with that id meanwhile/).waitFor();
  await page.getByRole("cell", { name: "Added elsewhere", exact: true }).waitFor();
  await addPlan.getByRole("button", { name: "Add plan" }).click();
  await addPlan.getByText(`Plan Added here added with id ${offered + 1}.`).waitFor();
  await page.getByRole("cell", { name: "Added here", exact: true }).waitFor();

  // Log out everywhere: another device's session ends as well.
  const other = await open(await browser.newContext());
  await other.goto(base);
  await login(other, admin, adminPassword);
  await page.getByRole("button", { name: "Log out everywhere" }).click();
  await page.getByLabel("Username or email").waitFor();
  await other.reload();
  await other.getByLabel("Username or email").waitFor();

  check(a11y.length === 0, `no serious accessibility violations: ${a11y.join(" | ")}`);
  check(problems.length === 0, `no console errors or policy violations: ${problems.join(" | ")}`);
  check(failures.length === 0, `no request failed: ${failures.join(", ")}`);
  console.log(JSON.stringify({ ...measured, shots }));
} finally {
  await browser.close();
}
