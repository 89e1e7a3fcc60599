// What the browser tests share: a Patchbay server of their own (the debug build, embedded
// SQLite in a temporary directory), Debian's Chromium driven by playwright-core, axe-core run on
// every page shown, and screenshots of each page at 375 and 1440 px in light and dark.
//
// Environment: PATCHBAY_BIN (default target/debug/patchbay), UI_TOOLS (the folder whose
// node_modules holds playwright-core and axe-core; default .tools/ui), CHROMIUM (default
// /usr/bin/chromium), UI_SCREENSHOTS (default target/ui-screenshots).
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

export const repo = resolve(new URL("../..", import.meta.url).pathname);
const tools = process.env.UI_TOOLS || join(repo, ".tools/ui");
const require = createRequire(join(tools, "node_modules/"));
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
export const shots = process.env.UI_SCREENSHOTS || join(repo, "target/ui-screenshots");
mkdirSync(shots, { recursive: true });

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/// Resolves when `stream` prints a line matching `pattern`; the match.
function waitFor(stream, pattern, what, ms = 30000) {
  return new Promise((ok, fail) => {
    let seen = "";
    const timer = setTimeout(() => fail(new Error(`${what} did not start: ${seen.slice(-2000)}`)), ms);
    stream.on("data", (chunk) => {
      seen += chunk.toString();
      const m = seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    });
  });
}

const children = new Set();
function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}
process.on("exit", () => { for (const c of children) c.kill("SIGKILL"); });

/// A Patchbay server on a free port; `{url, token, port, logs(), stop()}`.
export async function patchbay({ port, env = {}, args = [] } = {}) {
  port = port || (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "patchbay-ui-"));
  const bin = process.env.PATCHBAY_BIN || join(repo, "target/debug/patchbay");
  const child = track(spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--allow-net", "127.0.0.0/8", ...args], {
    env: { ...process.env, PATCHBAY_DATA_DIR: dir, PATCHBAY_TEST_RATE_LIMIT: "0", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  }));
  let log = "";
  child.stderr.on("data", (c) => { log += c.toString(); });
  const [, token] = await waitFor(child.stdout, /Admin token[^:]*: (pb_[A-Za-z0-9_-]{43})/, "patchbay");
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    token,
    dir,
    logs: () => log,
    async api(method, path, body) {
      const r = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on("exit", ok)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// A peer started with `node`, ready when it prints `ready`.
export async function nodePeer(args, ready, { env = {}, stream = "stdout" } = {}) {
  const child = track(spawn("node", args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }));
  await waitFor(child[stream], ready, args[0]);
  return { stop: () => child.kill("SIGKILL") };
}

const chromiumArgs = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
];

/// Headless Chromium.
export async function browser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: chromiumArgs });
}

/// A page that fails the test on any script error or CSP violation.
export async function newPage(b, options = {}) {
  const context = await b.newContext({ viewport: { width: 1440, height: 900 }, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.problems = problems;
  return page;
}

/// Forgets the console's note of a page answered `status` on purpose (a refused form comes
/// back 422 with its errors; the browser logs the status).
export function expectStatus(page, status) {
  const note = `status of ${status}`;
  const before = page.problems.length;
  page.problems.splice(0, page.problems.length, ...page.problems.filter((p) => !p.includes(note)));
  assert.ok(page.problems.length < before, `the page was answered ${status}`);
}

/// The violations axe-core finds at WCAG 2.2 AA on the page as it is now.
async function axe(page) {
  await page.evaluate(`${axeSource}\n;void 0`);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"] },
    });
    return r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
  });
}

const checked = new Set();

/// Checks the page with axe in light and dark at 1440 and 375 px and writes its screenshots
/// (`name-1440-light.png`, …); the page is left as it was (1440 px, light).
export async function look(page, name) {
  const problems = [];
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const width of [1440, 375]) {
      await page.setViewportSize({ width, height: width === 375 ? 812 : 900 });
      const violations = await axe(page);
      for (const v of violations) problems.push(`${scheme} ${width}px ${v.id}: ${v.help} at ${v.nodes.join(", ")}`);
      await page.screenshot({ path: join(shots, `${name}-${width}-${scheme}.png`), fullPage: true });
      if (width === 375) {
        const overflow = await page.evaluate(() => {
          const over = document.documentElement.scrollWidth - window.innerWidth;
          if (over <= 1) return null;
          // The innermost elements reaching past the screen's edge.
          const wide = Array.from(document.querySelectorAll("body *"))
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".table-wrap"))
            .filter((el) => !Array.from(el.children).some((c) => c.getBoundingClientRect().right > window.innerWidth + 1))
            .slice(0, 3)
            .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}.${el.className}`);
          return `${over}px wider than the screen (${wide.join(", ")})`;
        });
        if (overflow) problems.push(`${scheme} 375px: the page is ${overflow}`);
      }
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 1440, height: 900 });
  checked.add(name);
  assert.deepEqual(problems, [], `${name}: accessibility problems`);
  assert.deepEqual(page.problems, [], `${name}: script errors`);
}

/// Logs in through the log-in page.
export async function logIn(page, server) {
  await page.goto(`${server.url}/`);
  await page.waitForURL(/\/login/);
  await look(page, "login");
  await page.getByLabel("API token").fill(server.token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/connections$/);
}

/// Clicks `button`, whose answer is shown in the live region `selector`, and returns the
/// region's text once the answer is in.
export async function answer(page, button, selector) {
  const region = page.locator(selector);
  const round = Number((await region.getAttribute("data-round")) || 0);
  await button.click();
  await page.waitForFunction(
    ([sel, r]) => Number(document.querySelector(sel)?.dataset.round || 0) > r,
    [selector, round],
    { timeout: 30000 },
  );
  return (await region.innerText()).trim();
}
