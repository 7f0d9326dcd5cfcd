// Apollo Client 4 against the real authql server (BASE_URL): the flows a
// frontend app runs, and the error codes it branches on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { from as fromPromise, switchMap } from "rxjs";
import {
  ApolloClient,
  ApolloLink,
  CombinedGraphQLErrors,
  HttpLink,
  InMemoryCache,
  gql,
} from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";

const BASE_URL = process.env.BASE_URL;
assert.ok(BASE_URL, "BASE_URL must name the running server");

const PASSWORD = "correct horse battery staple";

const SIGNUP = gql`
  mutation Signup($input: SignupInput!) {
    signup(input: $input) { accessToken refreshToken tokenType expiresIn scope user { id username } }
  }
`;
const LOGIN = gql`
  mutation Login($username: String!, $password: String!) {
    login(username: $username, password: $password) { accessToken refreshToken }
  }
`;
const REFRESH = gql`
  mutation Refresh($refreshToken: String!) {
    refreshToken(refreshToken: $refreshToken) { accessToken refreshToken }
  }
`;
const ME = gql`
  query Me { me { id username } }
`;
const LOGOUT = gql`
  mutation Logout { logout }
`;

/** A browser-like session: tokens kept in memory, as an app would. */
class Session {
  accessToken = "";
  refreshToken = "";
  refreshes = 0;
}

/** anonymousClient talks to the server without credentials. */
function anonymousClient() {
  return new ApolloClient({
    link: new HttpLink({ uri: `${BASE_URL}/query` }),
    cache: new InMemoryCache(),
  });
}

/**
 * authedClient sends the session's access token on every request
 * (SetContextLink) and, when the server answers UNAUTHENTICATED, refreshes
 * the tokens once and retries (ErrorLink) when withRefresh is set.
 */
function authedClient(session, { withRefresh }) {
  const auth = new SetContextLink((prevContext) => ({
    headers: {
      ...prevContext.headers,
      ...(session.accessToken ? { authorization: `Bearer ${session.accessToken}` } : {}),
    },
  }));
  const refresh = new ErrorLink(({ error, operation, forward }) => {
    const unauthenticated =
      CombinedGraphQLErrors.is(error) &&
      error.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED");
    if (!unauthenticated || operation.getContext().retried || !session.refreshToken) {
      return;
    }
    operation.setContext({ retried: true });
    const renewed = anonymousClient()
      .mutate({ mutation: REFRESH, variables: { refreshToken: session.refreshToken } })
      .then(({ data }) => {
        session.accessToken = data.refreshToken.accessToken;
        session.refreshToken = data.refreshToken.refreshToken;
        session.refreshes++;
      });
    return fromPromise(renewed).pipe(switchMap(() => forward(operation)));
  });
  const links = withRefresh ? [refresh, auth] : [auth];
  return new ApolloClient({
    link: ApolloLink.from([...links, new HttpLink({ uri: `${BASE_URL}/query` })]),
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: "network-only" } },
  });
}

/** codeOf returns extensions.code of the one GraphQL error in err. */
function codeOf(err) {
  assert.ok(CombinedGraphQLErrors.is(err), `want CombinedGraphQLErrors, got ${err?.name}: ${err?.message}`);
  assert.equal(err.errors.length, 1, JSON.stringify(err.errors));
  return err.errors[0].extensions?.code;
}

const username = `apollo-${process.pid}-${Date.now()}`;

test("signup, me, refresh through ErrorLink, logout", async () => {
  const session = new Session();
  const { data } = await anonymousClient().mutate({
    mutation: SIGNUP,
    variables: { input: { username, password: PASSWORD } },
  });
  assert.equal(data.signup.tokenType, "Bearer");
  assert.equal(data.signup.user.username, username);
  session.accessToken = data.signup.accessToken;
  session.refreshToken = data.signup.refreshToken;

  const client = authedClient(session, { withRefresh: true });
  const me = await client.query({ query: ME });
  assert.equal(me.data.me.username, username);

  // A token the server refuses: the ErrorLink refreshes once and retries.
  session.accessToken = session.accessToken.slice(0, -4) + "AAAA";
  const again = await client.query({ query: ME });
  assert.equal(again.data.me.username, username);
  assert.equal(session.refreshes, 1);

  const out = await client.mutate({ mutation: LOGOUT });
  assert.equal(out.data.logout, true);

  // The logged-out token is refused at once...
  await assert.rejects(
    authedClient(session, { withRefresh: false }).query({ query: ME }),
    (err) => codeOf(err) === "UNAUTHENTICATED",
  );
  // ...and the ErrorLink's refresh cannot revive the session: the app sees
  // the refresh refused, and signs the user out.
  await assert.rejects(client.query({ query: ME }), (err) => codeOf(err) === "INVALID_GRANT");
});

test("login with the username, case-insensitively", async () => {
  const { data } = await anonymousClient().mutate({
    mutation: LOGIN,
    variables: { username: username.toUpperCase(), password: PASSWORD },
  });
  const session = Object.assign(new Session(), data.login);
  const me = await authedClient(session, { withRefresh: false }).query({ query: ME });
  assert.equal(me.data.me.username, username);
});

test("an invalid token arrives as CombinedGraphQLErrors UNAUTHENTICATED", async () => {
  const session = Object.assign(new Session(), { accessToken: "not-a-valid-token" });
  await assert.rejects(
    authedClient(session, { withRefresh: false }).query({ query: ME }),
    (err) => codeOf(err) === "UNAUTHENTICATED",
  );
});

test("anonymous me is UNAUTHENTICATED with data.me null", async () => {
  const result = await anonymousClient().query({ query: ME, errorPolicy: "all" });
  assert.equal(result.data?.me ?? null, null);
  assert.equal(codeOf(result.error), "UNAUTHENTICATED");
});

test("a wrong password is INVALID_GRANT", async () => {
  await assert.rejects(
    anonymousClient().mutate({ mutation: LOGIN, variables: { username, password: "not the password" } }),
    (err) => codeOf(err) === "INVALID_GRANT",
  );
});

test("a weak password is BAD_USER_INPUT on the password field", async () => {
  for (const password of ["short", "password123"]) {
    await assert.rejects(
      anonymousClient().mutate({
        mutation: SIGNUP,
        variables: { input: { username: `${username}-weak`, password } },
      }),
      (err) => codeOf(err) === "BAD_USER_INPUT" && err.errors[0].extensions.field === "password",
    );
  }
});
