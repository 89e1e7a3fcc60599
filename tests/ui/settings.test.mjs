// The organization's pages in a real browser: secrets (set, changed, deleted; a value never
// shown), API tokens (a new value shown once), OAuth apps, the audit log with its filters, and a
// failed webhook delivery replayed until it is delivered.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { browser, expectStatus, look, logIn, newPage, patchbay } from "./harness.mjs";

let server;
let chrome;
let page;

before(async () => {
  server = await patchbay();
  chrome = await browser();
  page = await newPage(chrome);
  await logIn(page, server);
});

after(async () => {
  await chrome?.close();
  await server?.stop();
});

test("organization secrets are set, changed and deleted without their values reaching a page", async () => {
  await page.getByRole("link", { name: "Secrets" }).click();
  await page.getByText("No secrets yet").waitFor();
  await look(page, "secrets-empty");
  await page.getByLabel("Name", { exact: true }).fill("stripe_live");
  await page.getByLabel("Value", { exact: true }).fill("sk_live_ui_canary_1");
  await page.getByRole("button", { name: "Save secret" }).click();
  await page.getByText("Secret saved.").waitFor();
  const row = page.getByRole("row", { name: /stripe_live/ });
  await row.getByText("Saved").waitFor();
  await look(page, "secrets");
  assert.ok(!(await page.content()).includes("sk_live_ui_canary_1"));
  await page.getByLabel("New value of stripe_live").fill("sk_live_ui_canary_2");
  await page.getByRole("button", { name: "Change stripe_live" }).click();
  await page.getByText("Secret changed.").waitFor();
  assert.ok(!(await page.content()).includes("sk_live_ui_canary_2"));
  // An empty value is refused, naming the field.
  await page.getByLabel("Name", { exact: true }).fill("empty_one");
  await page.getByRole("button", { name: "Save secret" }).click();
  await page.getByRole("alert").getByText("value:").waitFor();
  expectStatus(page, 422);
  assert.equal((await server.api("GET", "/v1/secrets")).length, 1);
  // A connection names it instead of holding a value of its own.
  await page.goto(`${server.url}/connections/new?kind=http&provider=custom`);
  await page.locator("#f-name").fill("uses-shared");
  await page.getByLabel(/^Base URL/).fill("https://api.example.com");
  await page.getByLabel("Method", { exact: true }).selectOption("bearer");
  await page.getByLabel("Or use an organization secret as Token").selectOption("stripe_live");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.waitForURL(/\?saved=1$/);
  await page.getByText("from the organization secret stripe_live").waitFor();
  const shared = (await server.api("GET", "/v1/connections")).items.find((c) => c.name === "uses-shared");
  assert.equal(shared.secrets.token.ref, "stripe_live");
  await page.getByRole("link", { name: "Edit uses-shared" }).click();
  await page.getByText("From the organization secret").waitFor();
  await look(page, "connection-edit-ref");
  await page.goto(`${server.url}/connections/${shared.id}/delete`);
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByText("Connection deleted.").waitFor();
  await page.getByRole("link", { name: "Secrets" }).click();
  await page.getByRole("button", { name: "Delete stripe_live" }).click();
  await page.getByText("Secret deleted.").waitFor();
  assert.equal((await server.api("GET", "/v1/secrets")).length, 0);
});

test("a new API token's value is shown once", async () => {
  await page.getByRole("link", { name: "Tokens" }).click();
  await look(page, "tokens");
  await page.getByLabel("Name", { exact: true }).fill("n8n-prod");
  await page.getByLabel("Role", { exact: true }).selectOption("executor");
  await page.getByRole("button", { name: "Create token" }).click();
  const value = (await page.locator("#new-token").innerText()).trim();
  assert.match(value, /^pb_[A-Za-z0-9_-]{43}$/);
  await look(page, "tokens-created");
  const works = await fetch(`${server.url}/v1/connections`, { headers: { authorization: `Bearer ${value}` } });
  assert.equal(works.status, 200, "the shown value is the token");
  const count = (await server.api("GET", "/v1/tokens")).length;
  await page.reload();
  await page.getByRole("heading", { name: "API tokens" }).waitFor();
  assert.equal((await server.api("GET", "/v1/tokens")).length, count, "a reload makes no second token");
  assert.ok(!(await page.content()).includes(value), "nor shows the value again");
  await page.getByRole("link", { name: "Tokens" }).click();
  assert.ok(!(await page.content()).includes(value), "never shown again");
  await page.getByRole("button", { name: "Revoke n8n-prod" }).click();
  await page.getByText("Token revoked.").waitFor();
  const revoked = await fetch(`${server.url}/v1/connections`, { headers: { authorization: `Bearer ${value}` } });
  assert.equal(revoked.status, 401);
});

test("OAuth apps are registered and deleted, with the redirect URL to give the provider", async () => {
  await page.getByRole("link", { name: "OAuth apps" }).click();
  assert.equal(await page.locator("#redirect-url").innerText(), `${server.url}/v1/oauth/callback`);
  await look(page, "apps-empty");
  await page.getByLabel("Name", { exact: true }).fill("github-app");
  await page.getByLabel("Provider", { exact: true }).selectOption("github");
  await page.getByLabel("Client ID", { exact: true }).fill("Iv1.ui-client");
  await page.getByLabel("Client secret", { exact: true }).fill("ui-app-secret-1");
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByText("App registered.").waitFor();
  await page.getByRole("row", { name: /github-app/ }).getByText("Saved").waitFor();
  assert.ok(!(await page.content()).includes("ui-app-secret-1"));
  await look(page, "apps");
  await page.getByRole("button", { name: "Delete github-app" }).click();
  await page.getByText("App deleted.").waitFor();
});

test("the audit log lists, filters and checks its chain", async () => {
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByText(/The hash chain of all \d+ entries checks out/).waitFor();
  await look(page, "audit");
  await page.getByLabel("Action", { exact: true }).fill("token.create");
  await page.getByRole("button", { name: "Filter" }).click();
  const actions = await page.locator("tbody tr td:nth-child(3)").allInnerTexts();
  assert.ok(actions.length >= 1 && actions.every((a) => a === "token.create"), JSON.stringify(actions));
});

test("a failed delivery is replayed until delivered", async () => {
  let calls = 0;
  const receiver = createServer((req, res) => {
    calls += 1;
    req.resume();
    res.statusCode = calls === 1 ? 500 : 204;
    res.end();
  });
  await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
  try {
    const hook = await server.api("POST", "/v1/connections", {
      name: "receiver", kind: "webhook", config: { url: `http://127.0.0.1:${receiver.address().port}/hook` },
    });
    await server.api("POST", "/v1/actions/webhook", {
      connection: hook.id, mode: "fire_and_forget", body: { n: 1 }, retry: { attempts: 1 },
    });
    const status = async () => (await server.api("GET", "/v1/deliveries")).items[0]?.status;
    for (let i = 0; i < 100 && (await status()) !== "failed"; i += 1) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await status(), "failed");
    await page.getByRole("link", { name: "Deliveries" }).click();
    await page.getByRole("cell", { name: "failed", exact: true }).waitFor();
    await look(page, "deliveries");
    await page.getByRole("button", { name: /^Replay/ }).click();
    await page.getByText("Queued again.").waitFor();
    for (let i = 0; i < 100 && (await status()) !== "delivered"; i += 1) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await status(), "delivered");
    assert.equal(calls, 2);
    await page.reload();
    await page.getByRole("cell", { name: "delivered", exact: true }).waitFor();
  } finally {
    receiver.close();
  }
});
