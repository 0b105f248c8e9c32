// The API from pages on other origins, in headless Chromium with every other host cut off.
//
// A second HTTP server (node's http module) serves two pages:
// - on the allowed origin (http://localhost:$PAGES_PORT, the one PUSHHAND_CORS_ORIGINS names),
//   a storefront built with Apollo Client 4 (app.mjs, bundled here with esbuild): it signs
//   in, runs persisted queries (Apollo's PersistedQueryLink, hashed GETs) with its token,
//   places an order and follows it over a graphql-ws subscription (GraphQLWsLink) while this
//   script pays the order as the payment provider would;
// - on another origin (http://127.0.0.1:<another port>: loopback, which the development
//   default would allow, but not in the configured list), a page that calls the API with a
//   token and opens its WebSocket: the browser blocks the call (CORS) and the server refuses
//   the upgrade (403).
// Screenshots: storefront.png (the allowed page's steps) in $SCREENSHOTS.
//
//   PUSHHAND_URL=http://127.0.0.1:8000 PAGES_PORT=5173 SCREENSHOTS=/some/dir node tests/browser/origins.mjs
//
// The server must run with PUSHHAND_CORS_ORIGINS=http://localhost:$PAGES_PORT and the demo
// data; `run.sh` beside this file starts one so and calls this after ide.mjs.

import { build } from "esbuild";
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { base, gql, login, PASSWORD, PATIENCE, shots } from "./common.mjs";

const pagesPort = Number(process.env.PAGES_PORT ?? 5173);
const api = new URL(base);

const STOREFRONT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Storefront (another origin)</title>
<style>body { font: 16px system-ui, sans-serif; margin: 2rem; } li { margin: .3rem 0; }</style>
</head><body><h1>Storefront on <span id="origin"></span></h1>
<p>Apollo Client 4 · PersistedQueryLink · GraphQLWsLink → <span id="api"></span></p>
<ol id="steps"></ol>
<script>document.querySelector("#origin").textContent = location.origin;
document.querySelector("#api").textContent = new URLSearchParams(location.search).get("api");</script>
<script type="module" src="/app.js"></script></body></html>`;

// Calls the API as any page could, with a token; reports what the browser let through.
const ELSEWHERE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head><body>
<h1>Another site</h1><pre id="out"></pre>
<script type="module">
const params = new URLSearchParams(location.search);
const api = params.get("api");
const result = {};
try {
  const resp = await fetch(api + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + params.get("token") },
    body: JSON.stringify({ query: "{ me { displayName } }" }),
  });
  result.fetch = "allowed " + resp.status;
} catch (e) {
  result.fetch = "blocked";
}
try {
  const resp = await fetch(api + "/graphql?query=%7B__typename%7D");
  result.simpleGet = "readable " + resp.status;
} catch (e) {
  result.simpleGet = "blocked";
}
result.websocket = await new Promise((resolve) => {
  const ws = new WebSocket(api.replace(/^http/, "ws") + "/graphql/ws", "graphql-transport-ws");
  ws.onopen = () => { ws.close(); resolve("open"); };
  ws.onerror = () => resolve("refused");
});
document.querySelector("#out").textContent = JSON.stringify(result, null, 2);
window.elsewhere = result;
</script></body></html>`;

/// The storefront's script: app.mjs and its packages in one ES module.
async function bundle() {
  const started = Date.now();
  const out = await build({
    entryPoints: [fileURLToPath(new URL("./app.mjs", import.meta.url))],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "chrome120",
    minify: true,
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "warning",
  });
  const js = out.outputFiles[0].text;
  console.log(`ok: bundled the storefront (${(js.length / 1024).toFixed(0)} KiB in ${Date.now() - started} ms)`);
  return js;
}

/// Serves the pages on `ports` (one server per port: one per origin).
async function servePages(js, ports) {
  const handler = (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const [type, body] =
      path === "/app.js"
        ? ["text/javascript", js]
        : path === "/elsewhere.html"
          ? ["text/html", ELSEWHERE]
          : path === "/"
            ? ["text/html", STOREFRONT]
            : [null, null];
    if (!type) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" });
    res.end(body);
  };
  return Promise.all(
    ports.map(
      ([host, port]) =>
        new Promise((resolve, reject) => {
          const server = createServer(handler);
          server.once("error", reject);
          server.listen(port, host, () => resolve(server));
        }),
    ),
  );
}

async function main() {
  mkdirSync(shots, { recursive: true });
  const js = await bundle();
  const [allowedServer, otherServer] = await servePages(js, [
    ["127.0.0.1", pagesPort],
    ["127.0.0.1", 0],
  ]);
  const allowed = `http://localhost:${pagesPort}`;
  const other = `http://127.0.0.1:${otherServer.address().port}`;
  const admin = await login("admin@pushhand.example");
  const founder = await login("founder1@pushhand.example");

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // No other host name resolves: the network is cut off but for these servers.
    args: ["--no-sandbox", `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${api.hostname}, EXCLUDE localhost`],
  });
  const failures = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const external = [];
    const known = new Set([api.origin, allowed, other]);
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (known.has(url.origin)) return route.continue();
      external.push(url.href);
      return route.abort();
    });

    // The storefront on the allowed origin.
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    const apiCalls = [];
    page.on("requestfinished", async (req) => {
      if (!req.url().startsWith(`${api.origin}/graphql`)) return;
      const resp = await req.response();
      const answer = await resp?.text().catch(() => "") ?? "";
      apiCalls.push({ method: req.method(), url: req.url(), body: req.postData() ?? "", status: resp?.status(), answer });
    });
    const query = new URLSearchParams({
      api: api.origin,
      email: "founder1@pushhand.example",
      password: PASSWORD,
    });
    await page.goto(`${allowed}/?${query}`);
    const waitFor = (test, what) =>
      page
        .waitForFunction(test, null, { timeout: PATIENCE })
        .catch(async () => {
          const s = await page.evaluate(() => window.storefront);
          throw new Error(`${what}: ${JSON.stringify(s)}`);
        });
    await waitFor(
      () => window.storefront?.subscribed && window.storefront.steps.includes("websocket connected"),
      "the storefront did not get to its subscription",
    );
    console.log("ok: signed in, ran persisted queries with the token and placed an order from another origin");
    const order = await page.evaluate(() => window.storefront.order);
    // Give the socket a moment to subscribe, then pay as the provider would.
    await page.waitForTimeout(1_000);
    await gql(
      "mutation($i: ConfirmPaymentInput!) { confirmPayment(input: $i) { status } }",
      { i: { orderId: order.id, paymentReference: `origins-${order.id}`, amount: order.total } },
      admin,
    );
    await waitFor(() => window.storefront.live.includes("PAID"), "no live PAID status");
    console.log("ok: the subscription (GraphQLWsLink) received the order's PAID status");
    await page.screenshot({ path: `${shots}/storefront.png` });
    console.log(`screenshot: ${shots}/storefront.png`);

    // Persisted queries really were used: a hash the server had not seen
    // (PERSISTED_QUERY_NOT_FOUND), sent again with the text, then a GET with the hash alone
    // answered from the store.
    const persisted = apiCalls.filter((c) => (c.url + c.body).includes("persistedQuery"));
    const hashOnly = (c) => c.method === "GET" && !new URL(c.url).searchParams.has("query");
    const missed = persisted.find((c) => hashOnly(c) && c.answer.includes("PERSISTED_QUERY_NOT_FOUND"));
    const withText = persisted.find((c) => c.method === "POST" && c.body.includes('"query"'));
    const hit = persisted.find((c) => hashOnly(c) && c.status === 200 && c.answer.includes('"products"'));
    const calls = JSON.stringify(persisted.map(({ method, url, status }) => ({ method, url, status })));
    if (!missed) failures.push(`no hashed GET the server did not know: ${calls}`);
    if (!withText) failures.push(`no registration with the text: ${calls}`);
    if (!hit) failures.push(`no GET with the hash alone answered with data: ${calls}`);
    if (missed && withText && hit) {
      console.log(`ok: persisted queries: a miss, a registration and a hashed GET answered (${persisted.length} requests)`);
    }
    if (errors.length) failures.push(`storefront console errors: ${errors.join(" | ")}`);

    // Another origin, not in PUSHHAND_CORS_ORIGINS.
    const elsewhere = await context.newPage();
    const blockedMessages = [];
    elsewhere.on("console", (m) => m.type() === "error" && blockedMessages.push(m.text()));
    const q2 = new URLSearchParams({ api: api.origin, token: founder });
    await elsewhere.goto(`${other}/elsewhere.html?${q2}`);
    await elsewhere.waitForFunction(() => window.elsewhere, null, { timeout: PATIENCE });
    const result = await elsewhere.evaluate(() => window.elsewhere);
    const expected = { fetch: "blocked", simpleGet: "blocked", websocket: "refused" };
    if (JSON.stringify(result) !== JSON.stringify(expected)) {
      failures.push(`another origin: ${JSON.stringify(result)}, expected ${JSON.stringify(expected)}`);
    } else if (!blockedMessages.some((m) => /blocked by CORS policy/.test(m))) {
      failures.push(`no CORS message for another origin: ${blockedMessages.join(" | ")}`);
    } else {
      console.log(`ok: a page on ${other} is blocked (CORS) and its WebSocket refused`);
    }
    if (external.length) failures.push(`requests to other hosts: ${external.join(", ")}`);
  } catch (e) {
    failures.push(String(e));
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await pages[0].screenshot({ path: `${shots}/storefront-failed.png` }).catch(() => {});
  } finally {
    await browser.close();
    allowedServer.close();
    otherServer.close();
  }
  if (failures.length) {
    for (const f of failures) console.error(`FAILED: ${f}`);
    console.log("origins: 0 passed, 1 failed");
    process.exit(1);
  }
  console.log("origins: 1 passed, 0 failed");
}

await main();
