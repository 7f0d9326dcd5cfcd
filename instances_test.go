package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testKEK is the KEY_ENCRYPTION_KEY of the tests' PostgreSQL instances.
const testKEK = "a key encryption key of 32 bytes or more"

// newInstances starts n instances of authql as newApp builds them, each
// behind its own HTTP server, on one new PostgreSQL database, sharing one
// clock; edit may change their configuration.
func newInstances(t *testing.T, n int, edit ...func(*config)) ([]*testApp, *authtest.Clock) {
	t.Helper()
	dbURL := pgtest.URL(t)
	c := authtest.NewClock(time.Now().UTC())
	sealer, err := auth.NewSealer([]byte(testKEK))
	if err != nil {
		t.Fatal(err)
	}
	apps := make([]*testApp, n)
	for i := range apps {
		apps[i] = newTestApp(t, append([]func(*config){func(cfg *config) {
			cfg.store.url, cfg.auth.Sealer, cfg.auth.Now = dbURL, sealer, c.Now
		}}, edit...)...)
	}
	return apps, c
}

// TestManyInstances: three instances on one PostgreSQL database behave as
// one server, whichever of them each request reaches.
func TestManyInstances(t *testing.T) {
	t.Run("SignInOnOneMeOnAnother", func(t *testing.T) {
		apps, _ := newInstances(t, 3)
		apps[0].addUser("alice", alicePassword)
		tok := apps[1].login("alice", alicePassword)
		wantMe(t, apps[2], tok.AccessToken, "alice")
		wantMe(t, apps[0], tok.AccessToken, "alice")
	})

	t.Run("LogoutOnOneRefusesOnAll", func(t *testing.T) {
		apps, _ := newInstances(t, 3)
		apps[0].addUser("alice", alicePassword)
		tok := apps[0].login("alice", alicePassword)
		for _, a := range apps {
			wantMe(t, a, tok.AccessToken, "alice")
		}
		_, res := apps[2].graphql(tok.AccessToken, `mutation { logout }`, nil)
		if len(res.Errors) > 0 {
			t.Fatalf("logout: %+v", res.Errors)
		}
		for i, a := range apps {
			if status := authtest.MeStatus(t, a.URL, tok.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("instance %d: me after logout on instance 2: %d; want 401", i, status)
			}
		}
	})

	t.Run("RefreshReplayAcrossInstances", func(t *testing.T) {
		apps, c := newInstances(t, 3)
		apps[0].addUser("alice", alicePassword)
		tok := apps[0].login("alice", alicePassword)
		refresh := func(a *testApp, token string) (*http.Response, authtest.Tokens) {
			t.Helper()
			resp, body := a.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
			var out authtest.Tokens
			json.Unmarshal(body, &out)
			return resp, out
		}
		resp, first := refresh(apps[1], tok.RefreshToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d", resp.StatusCode)
		}
		resp, replay := refresh(apps[2], tok.RefreshToken)
		if resp.StatusCode != http.StatusOK || replay.RefreshToken != first.RefreshToken {
			t.Fatalf("replay inside the grace window on another instance: %d, same child %v",
				resp.StatusCode, replay.RefreshToken == first.RefreshToken)
		}
		c.Advance(time.Minute) // past REFRESH_REUSE_GRACE
		if resp, _ := refresh(apps[0], tok.RefreshToken); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replay after the grace window: %d; want 400", resp.StatusCode)
		}
		for i, a := range apps {
			if resp, _ := refresh(a, first.RefreshToken); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("instance %d: the child after theft was detected: %d; want 400", i, resp.StatusCode)
			}
			if status := authtest.MeStatus(t, a.URL, first.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("instance %d: the session's access token after theft was detected: %d; want 401", i, status)
			}
		}
	})

	t.Run("FailedLoginsCountAcrossInstances", func(t *testing.T) {
		const limit = 5
		apps, _ := newInstances(t, 3, func(cfg *config) {
			cfg.auth.LoginPairLimit = auth.Limit{N: limit, Per: time.Hour}
		})
		apps[0].addUser("alice", alicePassword)
		for i := range limit {
			resp, body := apps[i%3].wrongLogin("alice")
			authtest.WantOAuth(t, resp, body, http.StatusBadRequest, "invalid_grant")
		}
		for i, a := range apps {
			resp, body := a.wrongLogin("alice")
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("instance %d: failure %d: %d; want 429, as one instance would answer", i, limit+1, resp.StatusCode)
				continue
			}
			authtest.WantThrottled(t, resp, body)
		}
	})
}

// TestKeyRotatedThroughOneInstanceIsPublishedByAll runs three servers
// through run(), as three hosts would, and rotates the signing key with the
// CLI: every instance publishes the new key within its next read of the
// keys (every second), and a token signed by any verifies on all.
func TestKeyRotatedThroughOneInstanceIsPublishedByAll(t *testing.T) {
	env := map[string]string{"DATABASE_URL": pgtest.URL(t), "KEY_ENCRYPTION_KEY": testKEK, "BCRYPT_COST": "4"}
	var bases []string
	for range 3 {
		base, _ := startRun(t, env)
		bases = append(bases, base)
	}
	kids := func(base string) []string {
		t.Helper()
		resp, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range set.Keys {
			ids = append(ids, k.Kid)
		}
		return ids
	}
	first := kids(bases[0])
	for _, base := range bases[1:] {
		if got := kids(base); strings.Join(got, " ") != strings.Join(first, " ") || len(got) != 1 {
			t.Fatalf("instances publish %v and %v; want the same one key", first, got)
		}
	}
	out, errOut, code := cliRunEnv(t, env, "", "key", "rotate")
	if code != 0 {
		t.Fatalf("key rotate: exit %d: %s%s", code, out, errOut)
	}
	for i, base := range bases {
		deadline := time.Now().Add(10 * time.Second)
		for len(kids(base)) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d still publishes %v 10s after the rotation", i, kids(base))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestKilledInstanceLosesNothingAcknowledged: three instances of the real
// binary on one PostgreSQL database; one is killed with SIGKILL in the
// middle of a storm of signups and refreshes spread over all three. Every
// write any of them acknowledged is there for the survivors.
func TestKilledInstanceLosesNothingAcknowledged(t *testing.T) {
	env := []string{"DATABASE_URL=" + pgtest.URL(t), "KEY_ENCRYPTION_KEY=" + testKEK}
	var (
		bases  []string
		victim *exec.Cmd
	)
	for range 3 {
		base, cmd := startBinary(t, "unused.db", env...)
		bases, victim = append(bases, base), cmd
	}
	accounts := stormUntilKilled(t, bases, victim)
	wantAcknowledged(t, bases[0], accounts)
}
