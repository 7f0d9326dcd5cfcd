// The graphql-http audit (GraphQL over HTTP specification) against /query of
// the real authql server (BASE_URL): every MUST passes; the SHOULD and MAY
// results are printed and, with AUDIT_REPORT set, written there as JSON.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { auditServer } from "graphql-http";

const BASE_URL = process.env.BASE_URL;
assert.ok(BASE_URL, "BASE_URL must name the running server");

test("graphql-http audit: every MUST passes", async () => {
  const results = await auditServer({ url: `${BASE_URL}/query` });
  const byLevel = {};
  for (const r of results) {
    const level = r.name.split(" ")[0]; // MUST, SHOULD or MAY
    byLevel[level] ??= {};
    byLevel[level][r.status] = (byLevel[level][r.status] ?? 0) + 1;
  }
  const failing = results.filter((r) => r.status !== "ok");
  for (const r of failing) {
    console.log(`${r.status.toUpperCase()} ${r.name}: ${r.reason}`);
  }
  console.log(`audit: ${JSON.stringify(byLevel)}`);
  if (process.env.AUDIT_REPORT) {
    writeFileSync(process.env.AUDIT_REPORT, JSON.stringify({ byLevel, failing: failing.map((r) => ({ name: r.name, status: r.status, reason: r.reason })) }, null, 2));
  }
  const mustFailures = failing.filter((r) => r.name.startsWith("MUST"));
  assert.deepEqual(mustFailures.map((r) => r.name), [], "MUST requirements failed");
});
