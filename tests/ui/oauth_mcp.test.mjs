// OAuth and MCP in the browser: *Connect* through a popup against a real authorization server
// (oidc-provider), the same with popups blocked (window.open answers null, as under a popup
// blocker: the page says so and goes through the provider in the window), and an MCP connection's tools refreshed from the reference server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { browser, freePort, look, logIn, newPage, nodePeer, patchbay, repo } from "./harness.mjs";

let server;
let idpPort;
let chrome;
const peers = [];

before(async () => {
  const port = await freePort();
  idpPort = await freePort();
  peers.push(await nodePeer(
    [join(repo, "tests/peers/oidc_server.mjs"), join(repo, ".tools"), String(idpPort), `http://127.0.0.1:${port}/v1/oauth/callback`],
    /READY/,
  ));
  server = await patchbay({ port });
  chrome = await browser();
});

after(async () => {
  await chrome?.close();
  await server?.stop();
  for (const p of peers) p.stop();
});

function oidcConnection(name) {
  const base = `http://127.0.0.1:${idpPort}`;
  return server.api("POST", "/v1/connections", {
    name,
    kind: "http",
    auth: {
      type: "oauth2", authorization_url: `${base}/auth`, token_url: `${base}/token`, issuer: base,
      scopes: ["openid", "offline_access"], authorization_params: { prompt: "consent" },
    },
    config: { base_url: base },
    secrets: { client_id: "patchbay", client_secret: "patchbay-secret" },
  });
}

test("Connect opens the provider in a popup and the page learns the outcome without a reload", async () => {
  const c = await oidcConnection("idp-popup");
  const page = await newPage(chrome);
  await logIn(page, server);
  await page.goto(`${server.url}/connections/${c.id}`);
  await page.getByText("Not connected yet.").waitFor();
  await look(page, "oauth-connect");
  const marker = await page.evaluate(() => { window.__kept = "same document"; return window.__kept; });
  const popup = page.waitForEvent("popup");
  await page.getByRole("link", { name: "Connect", exact: true }).click();
  const win = await popup;
  await win.waitForEvent("close", { timeout: 30000 });
  await page.locator("#oauth-status").getByText(/^Connected/).waitFor();
  assert.equal(await page.evaluate(() => window.__kept), marker, "the page was not reloaded");
  assert.equal(await page.getByRole("link", { name: "Reconnect" }).isVisible(), true);
  const after = await server.api("GET", `/v1/connections/${c.id}`);
  assert.ok(after.oauth && after.oauth.linked_at, JSON.stringify(after.oauth));
  assert.equal(after.status, "active");
  await look(page, "oauth-connected");

  await page.getByRole("button", { name: "Disconnect" }).click();
  await page.getByText("Disconnected.").waitFor();
  await page.getByText("Not connected yet.").waitFor();
  const unlinked = await server.api("GET", `/v1/connections/${c.id}`);
  assert.equal(unlinked.status, "pending");
  await page.close();
});

test("with popups blocked, Connect says so and goes through the provider in the window", async () => {
  const c = await oidcConnection("idp-redirect");
  const blocked = await browser();
  try {
    const page = await newPage(blocked);
    // What a blocked popup looks like to a page: window.open answers null (as a popup
    // blocker makes it), so nothing opens.
    await page.addInitScript(() => { window.open = () => null; });
    await logIn(page, server);
    await page.goto(`${server.url}/connections/${c.id}`);
    await page.getByRole("link", { name: "Connect", exact: true }).click();
    await page.getByRole("alert").getByText("Your browser blocked the sign-in window").waitFor();
    await page.waitForURL(new RegExp(`/connections/${c.id}\\?connected=1$`), { timeout: 30000 });
    await page.getByText("Connected.", { exact: true }).waitFor();
    await page.locator("#oauth-status").getByText(/^Connected/).waitFor();
    const after = await server.api("GET", `/v1/connections/${c.id}`);
    assert.ok(after.oauth && after.oauth.linked_at, "linked through the redirect");
    await page.close();
  } finally {
    await blocked.close();
  }
});

test("an MCP connection's tools are listed and refreshed", async () => {
  const mcpPort = await freePort();
  peers.push(await nodePeer(
    [join(repo, ".tools/node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "streamableHttp"],
    /listening on port/,
    { env: { PORT: String(mcpPort) }, stream: "stderr" },
  ));
  const c = await server.api("POST", "/v1/connections", {
    name: "everything", kind: "mcp", config: { server_url: `http://127.0.0.1:${mcpPort}/mcp` },
  });
  const page = await newPage(chrome);
  await logIn(page, server);
  await page.goto(`${server.url}/connections/${c.id}`);
  const tools = page.getByRole("table", { name: "Tools of everything" });
  await tools.getByRole("rowheader", { name: "echo" }).waitFor();
  assert.match(await page.locator("#gateway-url").innerText(), new RegExp(`/mcp/c/${c.id}$`));
  await look(page, "mcp-tools");
  const before = (await server.api("GET", `/v1/connections/${c.id}`)).mcp.tools_refreshed_at;
  await page.getByRole("button", { name: "Refresh tools" }).click();
  await page.getByText("Tools refreshed.").waitFor();
  await tools.getByRole("rowheader", { name: "echo" }).waitFor();
  const after = (await server.api("GET", `/v1/connections/${c.id}`)).mcp.tools_refreshed_at;
  assert.ok(after > before, `refreshed at ${after}, before ${before}`);
  await page.close();
});
