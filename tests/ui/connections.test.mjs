// A person's way through the connections pages in a real browser: log in, add a database
// connection to the local PostgreSQL through the wizard, test it, edit it without retyping the
// password, break the password, delete it; and the wizard done with the keyboard alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { answer, browser, expectStatus, look, logIn, newPage, patchbay } from "./harness.mjs";

const PG = process.env.PATCHBAY_TEST_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/postgres";
// A role of its own, with a password (scram-sha-256 over loopback TCP; scripts/test.sh adds the
// pg_hba rule).
const ROLE = "patchbay_ui";
const PASSWORD = "ui-pw-3c9e51aa";

let server;
let chrome;

before(async () => {
  execFileSync("psql", [PG, "-qAtc",
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN ` +
    `CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'; ELSE ALTER ROLE ${ROLE} PASSWORD '${PASSWORD}'; END IF; END $$`]);
  server = await patchbay();
  chrome = await browser();
});

after(async () => {
  await chrome?.close();
  await server?.stop();
});

test("a database connection: added through the wizard, tested, edited, broken and deleted", async () => {
  const page = await newPage(chrome);
  await logIn(page, server);
  await page.getByText("No connections yet").waitFor();
  await look(page, "connections-empty");

  await page.getByRole("link", { name: "Add your first connection" }).click();
  await look(page, "wizard-kind");
  await page.getByRole("link", { name: /Database/ }).click();
  await look(page, "wizard-provider");
  await page.getByLabel("Search providers").fill("postg");
  assert.equal(await page.getByRole("link", { name: /MySQL/ }).isVisible(), false, "the search narrows the list");
  await page.getByRole("link", { name: /^PostgreSQL/ }).click();
  await page.getByRole("heading", { name: "Configure PostgreSQL" }).waitFor();
  assert.equal(await page.getByLabel(/^Driver/).inputValue(), "postgresql", "the provider's driver is filled");

  // Saved empty: every missing field is named inline and in a summary that takes the focus.
  await page.getByRole("button", { name: "Save", exact: true }).click();
  const summary = page.getByRole("alert").filter({ hasText: "need attention" });
  await summary.waitFor();
  expectStatus(page, 422);
  assert.equal(await summary.evaluate((el) => el === document.activeElement), true, "the summary has the focus");
  for (const field of ["Name", "Host", "Username", "Password"]) {
    await summary.getByRole("link", { name: new RegExp(`^${field}:`) }).waitFor();
  }
  assert.equal(await page.getByLabel(/^Host/).getAttribute("aria-invalid"), "true");
  await look(page, "wizard-errors");

  await page.getByLabel(/^Name/).fill("orders-db");
  await page.getByLabel(/^Host/).fill("127.0.0.1");
  await page.getByLabel(/^Database/).fill("test");
  await page.getByLabel(/^Username/).fill(ROLE);
  const password = page.locator("input[name='secrets.basic.password']:visible");
  assert.equal(await password.getAttribute("type"), "password");
  assert.equal(await password.getAttribute("autocomplete"), "new-password");
  await password.fill(PASSWORD);
  await page.getByRole("button", { name: "Show Password" }).click();
  assert.equal(await password.getAttribute("type"), "text", "the value being typed can be shown");
  await page.getByRole("button", { name: "Hide Password" }).click();
  await look(page, "wizard-configure");

  // Test before saving: the result appears in place, the typed password stays.
  const draft = await answer(page, page.getByRole("button", { name: "Test", exact: true }), "#draft-result");
  assert.match(draft, /✓ Connected \(\d+ ms\)/);
  assert.equal(await password.inputValue(), PASSWORD);

  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.waitForURL(/\/connections\/con_[0-9a-z]+\?saved=1$/);
  const id = page.url().match(/con_[0-9a-z]+/)[0];
  await look(page, "connection-detail");
  assert.ok(!(await page.content()).includes(PASSWORD), "the stored password never reaches the page");

  assert.match(await answer(page, page.getByRole("button", { name: "Test orders-db" }), `#result-${id}`), /✓ Connected \(\d+ ms\)/);
  assert.equal(await page.locator(`#badge-${id}`).innerText(), "Connected");

  // Edit without retyping the password: it is shown as saved, left alone, and still works.
  await page.getByRole("link", { name: "Edit orders-db" }).click();
  await page.getByText("Saved").first().waitFor();
  assert.equal(await page.locator("input[name='secrets.basic.password']").first().isVisible(), false,
    "the password field opens only with Change");
  await look(page, "connection-edit");
  await page.getByLabel(/^Name/).fill("orders");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForURL(/\?saved=1$/);
  assert.match(await answer(page, page.getByRole("button", { name: "Test orders" }), `#result-${id}`), /✓ Connected/,
    "the kept password still logs in");

  // Break it: Change opens an empty field.
  await page.getByRole("link", { name: "Edit orders" }).click();
  await page.getByRole("button", { name: "Change Password" }).click();
  const fresh = page.locator("input[name='secrets.basic.password']:visible");
  assert.equal(await fresh.inputValue(), "", "the stored value is not in the field");
  await fresh.fill("wrong-password");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForURL(/\?saved=1$/);
  const broken = await answer(page, page.getByRole("button", { name: "Test orders" }), `#result-${id}`);
  assert.match(broken, /✗ Authentication failed/);
  assert.equal(await page.locator(`#badge-${id}`).innerText(), "Failed");
  await page.getByText("Details").click();
  await look(page, "connection-failed");

  // The list shows it beside others, then delete through the dialog, which gives focus back
  // on cancel.
  const api = await server.api("POST", "/v1/connections", {
    name: "patchbay-health", kind: "http", config: { base_url: server.url, verify_path: "/healthz" },
  });
  await server.api("POST", `/v1/connections/${api.id}/test`);
  await server.api("POST", "/v1/connections", {
    name: "mailer", kind: "smtp",
    config: { host: "127.0.0.1", port: 2525, encryption: "none", from_address: "noreply@example.com" },
  });
  await page.goto(`${server.url}/connections`);
  await look(page, "connections");
  const del = page.getByRole("link", { name: "Delete orders" });
  await del.click();
  const dialog = page.getByRole("dialog", { name: "Delete orders?" });
  await dialog.waitFor();
  await look(page, "connections-delete-dialog");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await del.evaluate((el) => el === document.activeElement), true, "focus returns to the opener");
  await del.click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await page.getByText("Connection deleted.").waitFor();
  const left = (await server.api("GET", "/v1/connections")).items.map((c) => c.name).sort();
  assert.deepEqual(left, ["mailer", "patchbay-health"]);
  // The filters: by status in words, by kind.
  await page.getByLabel("Status").selectOption("Connected");
  await page.getByRole("button", { name: "Filter" }).click();
  assert.deepEqual(await page.locator(".card-head h2").allInnerTexts(), ["patchbay-health"]);
  await page.goto(`${server.url}/connections?kind=smtp`);
  assert.deepEqual(await page.locator(".card-head h2").allInnerTexts(), ["mailer"]);
  // The pages without a script's help: a delete confirmation, and an unknown page.
  const mailer = (await server.api("GET", "/v1/connections?kind=smtp")).items[0];
  await page.goto(`${server.url}/connections/${mailer.id}/delete`);
  await page.getByRole("heading", { name: "Delete mailer?" }).waitFor();
  await look(page, "connection-delete");
  await page.goto(`${server.url}/no-such-page`);
  await page.getByRole("heading", { name: "404 Not Found" }).waitFor();
  expectStatus(page, 404);
  await look(page, "not-found");
  await page.close();
});

test("the wizard with the keyboard alone", async () => {
  const page = await newPage(chrome);
  await logIn(page, server);
  const tabTo = async (name, max = 60) => {
    for (let i = 0; i < max; i += 1) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        if (!el || el === document.body) return { text: "", outline: "" };
        const label = el.labels && el.labels[0] ? el.labels[0].innerText : "";
        const style = getComputedStyle(el);
        return { text: `${el.innerText || ""} ${label} ${el.getAttribute("aria-label") || ""}`.trim(), outline: style.outlineStyle };
      });
      if (focused.text.includes(name)) {
        assert.notEqual(focused.outline, "none", `${name} shows where the focus is`);
        return;
      }
    }
    assert.fail(`${name} cannot be reached with Tab`);
  };
  await tabTo("Add");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/connections\/new$/);
  await tabTo("HTTP API");
  await page.keyboard.press("Enter");
  await page.waitForURL(/kind=http$/);
  await tabTo("Search providers");
  await page.keyboard.type("custom");
  await tabTo("Custom");
  await page.keyboard.press("Enter");
  await page.waitForURL(/provider=custom$/);
  await tabTo("Name");
  await page.keyboard.type("local-health");
  await tabTo("Base URL");
  await page.keyboard.type(server.url);
  await tabTo("Verify path");
  await page.keyboard.type("/healthz");
  await tabTo("Method");
  await page.keyboard.press("Home");
  assert.equal(await page.getByLabel("Method", { exact: true }).inputValue(), "none");
  await tabTo("Test");
  const round = Number((await page.locator("#draft-result").getAttribute("data-round")) || 0);
  await page.keyboard.press("Enter");
  await page.waitForFunction((r) => Number(document.querySelector("#draft-result").dataset.round || 0) > r, round);
  assert.match(await page.locator("#draft-result").innerText(), /✓ Connected \(HTTP 200, \d+ ms\)/);
  await tabTo("Save");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\?saved=1$/);
  await page.getByText("Saved.").waitFor();
  const listed = await server.api("GET", "/v1/connections");
  assert.ok(listed.items.some((c) => c.name === "local-health" && c.test_status === "untested"), JSON.stringify(listed));
  await page.close();
});

test("with scripting off: log in, add, test, edit, delete", async () => {
  const page = await newPage(chrome, { javaScriptEnabled: false });
  await page.goto(`${server.url}/login`);
  await page.getByLabel("API token").fill(server.token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/connections$/);
  await page.goto(`${server.url}/connections/new?kind=database&provider=postgresql`);
  await page.getByLabel(/^Name/).fill("no-script");
  await page.getByLabel(/^Host/).fill("127.0.0.1");
  await page.getByLabel(/^Database/).fill("test");
  await page.getByLabel(/^Username/).fill(ROLE);
  // Without the script every auth method's fields are on the page; the chosen one counts.
  await page.locator("input[name='secrets.basic.password']").first().fill(PASSWORD);
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator("#draft-result").getByText(/✓ Connected \(\d+ ms\)/).waitFor();
  // The page came back with the result; a password is never sent back, so it is typed again.
  assert.equal(await page.locator("input[name='secrets.basic.password']").first().inputValue(), "");
  await page.locator("input[name='secrets.basic.password']").first().fill(PASSWORD);
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.waitForURL(/\?saved=1$/);
  await page.getByRole("button", { name: "Test no-script" }).click();
  await page.getByText(/✓ Connected \(\d+ ms\)/).waitFor();
  await page.getByRole("link", { name: "Edit no-script" }).click();
  // The saved password: a field for a new one, which left empty keeps it.
  await page.getByText("Leave empty to keep the saved value.").first().waitFor();
  await page.getByLabel(/^Name/).fill("no-script-2");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForURL(/\?saved=1$/);
  await page.getByRole("button", { name: "Test no-script-2" }).click();
  await page.getByText(/✓ Connected \(\d+ ms\)/).waitFor();
  await page.getByRole("link", { name: "Delete no-script-2" }).click();
  await page.getByRole("heading", { name: "Delete no-script-2?" }).waitFor();
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByText("Connection deleted.").waitFor();
  await page.close();
});
