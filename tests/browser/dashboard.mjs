// Drives the dashboard in a real headless Chromium (Debian's `chromium`,
// through puppeteer-core: no browser download) against a running csatwatch
// with seeded data, and checks it with axe-core. Run by the Rust test
// `dashboard_browser` (tests/it/dashboard_browser.rs), which starts the
// daemon and passes:
//   BASE_URL    http://127.0.0.1:PORT
//   TOKEN       an [[api.tokens]] token
//   EXPECT      JSON: {"overview": [text...], "negatives": [text...], "rating": [text...],
//               "rating_link": "/dashboard/ratings/ID" (the queue link to follow)}
//   OUT_DIR     where screenshots go (1280 and 390 px, light and dark)
//   CHROMIUM    the browser binary (default /usr/bin/chromium)
// Exits non-zero on any failure, including a browser that cannot start.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import puppeteer from "puppeteer-core";

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BASE = process.env.BASE_URL;
const TOKEN = process.env.TOKEN;
const EXPECT = JSON.parse(process.env.EXPECT || "{}");
const OUT = process.env.OUT_DIR || "target/dashboard-screenshots";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const failures = [];
const fail = (msg) => { failures.push(msg); console.error("FAIL: " + msg); };
const log = (msg) => console.log(msg);

async function axe(page, name) {
  // Runtime evaluation is not subject to the page's CSP, so the page keeps
  // its real policy while axe runs.
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  for (const v of result) {
    const line = `${name}: axe ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`;
    if (v.impact === "serious" || v.impact === "critical") fail(line); else log("note: " + line);
  }
  log(`${name}: axe checked, ${result.length} violation(s) in total`);
}

async function expectText(page, name, texts) {
  const body = await page.evaluate(() => document.body.innerText);
  for (const t of texts || []) {
    if (!body.includes(t)) fail(`${name}: expected to show ${JSON.stringify(t)}`);
  }
}

async function scheme(page, value) {
  await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value }]);
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "csatwatch-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  try {
    const page = await browser.newPage();
    page.on("console", (m) => {
      const text = m.text();
      if (/Content Security Policy|Refused to/.test(text)) fail(`CSP violation: ${text}`);
    });
    page.on("pageerror", (e) => fail(`script error: ${e.message}`));
    page.on("requestfailed", (r) => {
      if (!r.url().endsWith("/favicon.ico")) fail(`request failed: ${r.url()}`);
    });
    page.on("request", (r) => {
      if (!r.url().startsWith(BASE) && !r.url().startsWith("data:")) fail(`external request: ${r.url()}`);
    });
    await page.setViewport({ width: 1280, height: 900 });

    // Not signed in: the login form, answered 401.
    const first = await page.goto(`${BASE}/dashboard/negatives`, { waitUntil: "load" });
    if (first.status() !== 401) fail(`unauthenticated page answered ${first.status()}, not 401`);
    await axe(page, "login");
    // Keyboard: the token field has focus, typing and Enter sign in.
    await page.keyboard.type(TOKEN);
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.keyboard.press("Enter")]);
    if (!page.url().includes("/dashboard/negatives")) fail(`after sign-in at ${page.url()}`);
    const cookies = await browser.cookies();
    const session = cookies.find((c) => c.name === "csatwatch_session");
    if (!session || !session.httpOnly || session.sameSite !== "Strict") {
      fail(`session cookie not HttpOnly/SameSite=Strict: ${JSON.stringify(session)}`);
    }

    // The skip link comes first in the tab order.
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
    if (!/Skip to content/.test(focused || "")) fail(`first Tab focused ${JSON.stringify(focused)}`);

    const pages = [
      ["overview", `${BASE}/dashboard`],
      ["negatives", `${BASE}/dashboard/negatives`],
    ];
    for (const [name, url] of pages) {
      for (const value of ["light", "dark"]) {
        await scheme(page, value);
        await page.setViewport({ width: 1280, height: 900 });
        const r = await page.goto(url, { waitUntil: "load" });
        if (r.status() !== 200) fail(`${name} answered ${r.status()}`);
        await expectText(page, name, EXPECT[name]);
        await axe(page, `${name} (${value}, 1280 px)`);
        await page.screenshot({ path: path.join(OUT, `${name}-1280-${value}.png`), fullPage: true });
        await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 1 });
        await page.goto(url, { waitUntil: "load" });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 1) fail(`${name} at 390 px is ${overflow} px wider than the screen`);
        await axe(page, `${name} (${value}, 390 px)`);
        await page.screenshot({ path: path.join(OUT, `${name}-390-${value}.png`), fullPage: true });
      }
    }

    // From the queue to a rating's page.
    await scheme(page, "light");
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${BASE}/dashboard/negatives`, { waitUntil: "load" });
    const selector = EXPECT.rating_link
      ? `table.queue a[href='${EXPECT.rating_link}']`
      : "table.queue a[href^='/dashboard/ratings/']";
    const link = await page.$(selector);
    if (!link) {
      fail("the queue has no link to a rating");
    } else {
      await Promise.all([page.waitForNavigation({ waitUntil: "load" }), link.click()]);
      await expectText(page, "rating", EXPECT.rating);
      const injected = await page.evaluate(() => document.querySelectorAll("script:not([src]), img[src='x']").length);
      if (injected) fail("customer text became markup on the rating page");
      await axe(page, "rating");
      await page.screenshot({ path: path.join(OUT, "rating-1280-light.png"), fullPage: true });
    }

    // Signing out ends the session.
    await page.goto(`${BASE}/dashboard`, { waitUntil: "load" });
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("form.logout button")]);
    const after = await page.goto(`${BASE}/dashboard`, { waitUntil: "load" });
    if (after.status() !== 401) fail(`after sign-out the overview answered ${after.status()}`);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  if (failures.length) {
    console.error(`${failures.length} failure(s)`);
    process.exit(1);
  }
  log("browser checks passed");
}

main().catch((e) => {
  console.error("FAIL: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
