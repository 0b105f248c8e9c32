// The IDE in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
// loads `GET /` from a running server with every other host cut off, shows the schema docs,
// runs a query, then runs a subscription and sees a live earnings event arrive, and saves a
// screenshot. Fails on any request to another origin and on any Content-Security-Policy
// violation.
//
//   PUSHHAND_URL=http://127.0.0.1:8000 SCREENSHOTS=/some/dir node tests/browser/ide.mjs
//
// The server must be a development server with the demo data (`founder1@…`, `admin@…`).
// `run.sh` beside this file starts one and calls this.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { base, gql, login, PATIENCE, shots } from "./common.mjs";

const origin = new URL(base).origin;

/// The text of the CodeMirror editor under `selector` (GraphiQL 4 uses CodeMirror 5).
function editorValue(page, selector) {
  return page.evaluate((s) => document.querySelector(s)?.CodeMirror?.getValue() ?? "", selector);
}

async function setEditor(page, selector, text) {
  await page.evaluate(
    ([s, t]) => document.querySelector(s).CodeMirror.setValue(t),
    [selector, text],
  );
  // GraphiQL reads its editors (the operation's name, the headers) after a debounce.
  await page.waitForTimeout(600);
}

async function waitForResult(page, needle) {
  await page.waitForFunction(
    (n) => (document.querySelector(".result-window .CodeMirror")?.CodeMirror?.getValue() ?? "").includes(n),
    needle,
    { timeout: PATIENCE },
  );
}

const QUERY_EDITOR = ".graphiql-query-editor .CodeMirror";
const SUBSCRIPTION = `subscription Earnings {
  earningsUpdated { kind earning { kind amount status } summary { pending } }
}`;

async function main() {
  mkdirSync(shots, { recursive: true });
  // Setup over HTTP: two demo members, and an unpaid order of founder1's own.
  const founder = await login("founder1@pushhand.example");
  const admin = await login("admin@pushhand.example");
  const products = await gql("{ products(first: 20) { edges { node { skus { id stock } } } } }");
  const sku = products.products.edges
    .flatMap((e) => e.node.skus)
    .find((s) => s.stock > 0);
  if (!sku) throw new Error("no SKU in stock");
  const placed = await gql(
    "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total } }",
    { i: { lines: [{ skuId: sku.id, quantity: 1 }] } },
    founder,
  );
  const order = placed.placeOrder;

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // No other host name resolves: the network is cut off but for the server.
    args: ["--no-sandbox", `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${new URL(base).hostname}`],
  });
  const failures = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const external = [];
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.origin === origin) return route.continue();
      external.push(url.href);
      return route.abort();
    });
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));

    await page.goto(`${base}/`);
    await page.waitForSelector(QUERY_EDITOR, { timeout: PATIENCE });
    console.log("ok: the IDE loaded");

    // The schema docs (from introspection).
    await page.getByRole("button", { name: "Show Documentation Explorer" }).click();
    await page.waitForFunction(
      () => (document.querySelector(".graphiql-doc-explorer")?.innerText ?? "").includes("Query"),
      null,
      { timeout: PATIENCE },
    );
    console.log("ok: the documentation explorer shows the schema");

    // A query.
    await setEditor(page, QUERY_EDITOR, "query Grid { products(first: 3) { edges { node { name } } } }");
    await page.locator(".graphiql-execute-button").click();
    await waitForResult(page, '"products"');
    console.log("ok: a query ran");

    // A subscription, signed in through the Headers tab (sent in `connection_init`).
    await page.getByRole("button", { name: "Headers" }).click();
    const headers = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
    await page.waitForSelector(headers, { timeout: PATIENCE });
    await setEditor(page, headers, JSON.stringify({ Authorization: `Bearer ${founder}` }));
    await setEditor(page, QUERY_EDITOR, SUBSCRIPTION);
    await page.locator(".graphiql-execute-button").click();
    // Running: the button stops the subscription now. Give the socket a moment to subscribe.
    await page.waitForSelector('.graphiql-execute-button[aria-label^="Stop"]', { timeout: PATIENCE });
    await page.waitForTimeout(1_000);
    await gql(
      "mutation($i: ConfirmPaymentInput!) { confirmPayment(input: $i) { status } }",
      { i: { orderId: order.id, paymentReference: `browser-${order.id}`, amount: order.total } },
      admin,
    );
    await waitForResult(page, "EARNING_CREATED");
    console.log("ok: a subscription received a live event");
    await page.screenshot({ path: `${shots}/ide.png` });
    console.log(`screenshot: ${shots}/ide.png`);

    if (external.length) failures.push(`requests to other origins: ${external.join(", ")}`);
    const csp = errors.filter((e) => /Content.Security.Policy/i.test(e));
    if (csp.length) failures.push(`CSP violations: ${csp.join(" | ")}`);
    for (const e of errors.filter((e) => !csp.includes(e))) console.log(`console error: ${e}`);
  } catch (e) {
    failures.push(String(e));
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await pages[0].screenshot({ path: `${shots}/ide-failed.png` }).catch(() => {});
  } finally {
    await browser.close();
  }
  if (failures.length) {
    for (const f of failures) console.error(`FAILED: ${f}`);
    console.log(`browser: 0 passed, 1 failed`);
    process.exit(1);
  }
  console.log("browser: 1 passed, 0 failed");
}

await main();
