// The playground at GET / in a real Chromium (Debian's, driven by
// playwright-core), with every request to anything but the server blocked:
// log in through the editor, put the token in the headers editor, query me,
// and find the token nowhere in localStorage.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL;
assert.ok(BASE_URL, "BASE_URL must name the running server");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.ARTIFACTS_DIR || "test-results";

const PASSWORD = "correct horse battery staple";
const username = `browser-${process.pid}-${Date.now()}`;

/** replaceEditor selects all of a CodeMirror editor's text and pastes text. */
async function replaceEditor(page, selector, text) {
  await page.locator(`${selector} .CodeMirror`).first().click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(text);
}

/** run executes the query editor's operation and returns the result text. */
async function run(page, want) {
  await page.locator(".graphiql-execute-button").click();
  const result = page.locator(".result-window .CodeMirror");
  await page.waitForFunction(
    (w) => document.querySelector(".result-window .CodeMirror")?.CodeMirror.getValue().includes(w),
    want,
    { timeout: 15000 },
  );
  return result.evaluate((el) => el.CodeMirror.getValue());
}

test("log in and query me in the playground, offline", async () => {
  const signup = await fetch(`${BASE_URL}/query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: "mutation($u: String!, $p: String!) { signup(input: {username: $u, password: $p}) { accessToken } }",
      variables: { u: username, p: PASSWORD },
    }),
  });
  assert.equal(signup.status, 200);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const server = new URL(BASE_URL);
    const blocked = [];
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.host === server.host) return route.continue();
      blocked.push(url.href);
      return route.abort("blockedbyclient");
    });
    const page = await context.newPage();
    const problems = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

    await page.goto(`${BASE_URL}/`);
    await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 15000 });

    await replaceEditor(page, ".graphiql-query-editor",
      `mutation { login(username: "${username}", password: "${PASSWORD}") { accessToken } }`);
    const login = JSON.parse(await run(page, "accessToken"));
    const token = login.data.login.accessToken;
    assert.match(token, /^ey/);

    await page.getByRole("button", { name: "Headers" }).click();
    await replaceEditor(page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)",
      JSON.stringify({ Authorization: `Bearer ${token}` }));
    await replaceEditor(page, ".graphiql-query-editor", "{ me { username } }");
    const me = JSON.parse(await run(page, username));
    assert.equal(me.data.me.username, username);

    // The token lives in the tab only. Unless the page says otherwise,
    // GraphiQL keeps the headers editor in localStorage (graphiql:headers,
    // graphiql:tabState, after a debounce) and, whatever the page says, the
    // headers of every run operation in its history (graphiql:queries).
    const storedToken = () => page.evaluate(
      (t) => Object.keys(localStorage).filter((k) => localStorage.getItem(k).includes(t)),
      token,
    );
    await page.waitForTimeout(1500);
    assert.deepEqual(await storedToken(), [], "localStorage keys holding the token");
    await page.reload();
    await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 15000 });
    assert.deepEqual(await storedToken(), [], "localStorage keys holding the token after a reload");

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}/playground.png` });

    assert.deepEqual(blocked, [], "the playground asked for something beyond the server");
    assert.deepEqual(problems, [], "the page logged errors (a CSP violation would be one)");
  } finally {
    await browser.close();
  }
});
