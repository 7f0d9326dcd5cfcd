// jose (https://github.com/panva/jose), a third-party JOSE library, as a
// resource server would use it against the real authql server (BASE_URL):
// discover the metadata, fetch the keys from jwks_uri, and verify an access
// token from /token with no shared secret; then check that it refuses the
// forgeries a verifier must refuse. e2e_test.go runs this file once per
// JWT_ALG, with PUBLIC_URL set to BASE_URL, EXPECTED_ALG set to the
// algorithm, and a user made with `authql user add` (TEST_USERNAME,
// TEST_PASSWORD, TEST_SCOPE).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (see e2e_test.go)`);
  return value;
}

const BASE_URL = env("BASE_URL");
const ALG = env("EXPECTED_ALG");
const USERNAME = env("TEST_USERNAME");
const PASSWORD = env("TEST_PASSWORD");
const SCOPE = env("TEST_SCOPE");

/** getJSON fetches url and returns its response and parsed body. */
async function getJSON(url) {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return { response, body: await response.json() };
}

// Discovery, as a resource server configured with only the issuer does it
// (RFC 8414 section 3).
const { body: metadata } = await getJSON(`${BASE_URL}/.well-known/oauth-authorization-server`);
const JWKS = createRemoteJWKSet(new URL(metadata.jwks_uri));

/** accessToken runs the password grant at the discovered token_endpoint. */
async function accessToken() {
  const response = await fetch(metadata.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "password", username: USERNAME, password: PASSWORD, scope: SCOPE }),
  });
  const body = await response.json();
  assert.equal(response.status, 200, `POST /token: ${JSON.stringify(body)}`);
  assert.equal(body.token_type, "Bearer");
  return body;
}

/** verify checks token as a resource server of this issuer must. */
function verify(token, options = {}) {
  return jwtVerify(token, JWKS, {
    issuer: metadata.issuer,
    typ: "at+jwt",
    algorithms: [ALG],
    requiredClaims: ["sub", "exp", "iat"],
    ...options,
  });
}

/** me returns the user the server itself sees behind token. */
async function me(token) {
  const response = await fetch(`${BASE_URL}/query`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: "{ me { id username } }" }),
  });
  const body = await response.json();
  assert.ok(body.data?.me, `query me: ${JSON.stringify(body)}`);
  return body.data.me;
}

const b64 = (value) => Buffer.from(value).toString("base64url");
const unb64 = (segment) => Buffer.from(segment, "base64url");

/** refused asserts that verify refuses token with the jose error code. */
async function refused(token, code, options) {
  await assert.rejects(verify(token, options), (err) => {
    assert.equal(err.code, code, `${err.name}: ${err.message}`);
    return true;
  });
}

test("the metadata names PUBLIC_URL as issuer, and a JWKS of public keys", async () => {
  assert.equal(metadata.issuer, BASE_URL, "the server runs with PUBLIC_URL=BASE_URL");
  assert.equal(metadata.jwks_uri, `${metadata.issuer}/.well-known/jwks.json`);
  assert.equal(metadata.token_endpoint, `${metadata.issuer}/token`);

  const { response, body } = await getJSON(metadata.jwks_uri);
  assert.match(response.headers.get("content-type"), /^application\/jwk-set\+json/);
  assert.ok(body.keys.length >= 1, JSON.stringify(body));
  for (const key of body.keys) {
    assert.equal(key.alg, ALG, JSON.stringify(key));
    assert.equal(key.use, "sig");
    assert.ok(key.kid, "every key has a kid");
    for (const secret of ["d", "p", "q", "dp", "dq", "qi", "k"]) {
      assert.equal(key[secret], undefined, `the JWKS publishes the private member ${secret}`);
    }
  }
});

test(`jose verifies an ${ALG} access token with the discovered JWKS`, async () => {
  const before = Math.floor(Date.now() / 1000);
  const grant = await accessToken();
  assert.equal(grant.scope, SCOPE);

  const { payload, protectedHeader } = await verify(grant.access_token);
  assert.equal(protectedHeader.alg, ALG);
  assert.equal(protectedHeader.typ, "at+jwt");
  const { body: jwks } = await getJSON(metadata.jwks_uri);
  assert.ok(
    jwks.keys.some((k) => k.kid === protectedHeader.kid),
    `kid ${protectedHeader.kid} is in the JWKS`,
  );

  assert.equal(payload.iss, metadata.issuer);
  const user = await me(grant.access_token);
  assert.equal(user.username, USERNAME);
  assert.equal(payload.sub, user.id, "sub is the user's id");
  assert.equal(payload.username, USERNAME);
  assert.equal(payload.scope, SCOPE);
  const after = Math.ceil(Date.now() / 1000);
  assert.ok(payload.iat >= before - 1 && payload.iat <= after + 1, `iat ${payload.iat} is now`);
  assert.ok(Math.abs(payload.exp - payload.iat - grant.expires_in) <= 1,
    `exp - iat = ${payload.exp - payload.iat}, expires_in = ${grant.expires_in}`);
  assert.ok(payload.exp > after, "exp is in the future");

  // The options are enforced, not ignored: the same token fails for another
  // issuer, algorithm or type, and once expired.
  await refused(grant.access_token, "ERR_JWT_CLAIM_VALIDATION_FAILED", { issuer: "https://other.example" });
  const other = ALG === "RS256" ? "ES256" : "RS256";
  await refused(grant.access_token, "ERR_JOSE_ALG_NOT_ALLOWED", { algorithms: [other] });
  await refused(grant.access_token, "ERR_JWT_CLAIM_VALIDATION_FAILED", { typ: "JWT" });
  await refused(grant.access_token, "ERR_JWT_EXPIRED", { currentDate: new Date((payload.exp + 60) * 1000) });
});

test("jose refuses a token with one byte changed", async () => {
  const token = (await accessToken()).access_token;
  const [header, payload, signature] = token.split(".");
  const { id } = await me(token);

  // One byte of the payload: sub names another id, still valid JSON, so
  // only the signature can catch it.
  const claims = unb64(payload);
  const sub = claims.indexOf(`"sub":"${id}"`);
  assert.ok(sub >= 0, `the payload has the sub claim: ${claims}`);
  claims[sub + `"sub":"`.length] ^= 0x01;
  assert.notEqual(JSON.parse(claims).sub, id);
  await refused(`${header}.${b64(claims)}.${signature}`, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED");

  // One byte of the signature, in its middle (not in the last base64url
  // character, whose low bits are padding).
  const sig = unb64(signature);
  sig[sig.length >> 1] ^= 0x01;
  await refused(`${header}.${payload}.${b64(sig)}`, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED");
});

test("jose refuses a token whose header says alg none", async () => {
  const token = (await accessToken()).access_token;
  const [, payload, signature] = token.split(".");
  const none = b64(JSON.stringify({ ...decodeProtectedHeader(token), alg: "none" }));

  // Unsigned, as RFC 7519 section 6 writes it, and with the real
  // signature left in place.
  for (const forged of [`${none}.${payload}.`, `${none}.${payload}.${signature}`]) {
    await refused(forged, "ERR_JOSE_ALG_NOT_ALLOWED");
    // Even a verifier that forgot its algorithms list does not accept it:
    // no key of the JWKS is for alg none.
    await refused(forged, "ERR_JOSE_NOT_SUPPORTED", { algorithms: undefined });
  }
  // The untouched token still verifies: the forgeries failed on their own.
  assert.equal((await verify(token)).payload.username, USERNAME);
});
