package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

// wrongLogin tries a wrong password for username over /token.
func (s *server) wrongLogin(username string, header http.Header) (*http.Response, []byte) {
	s.t.Helper()
	form := authtest.PasswordGrant(username, "not the password")
	req := s.newRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return s.do(req)
}

// TestThrottleLogins is RFC 6749 section 4.3.2's brute-force protection,
// over /token. (Aliased login mutations, which count each, are graph's
// TestThrottleAliasedLogins.)
func TestThrottleLogins(t *testing.T) {
	limits := func(c config) {
		c.auth.LoginUserLimit = auth.Limit{N: 3, Per: time.Minute}
		c.auth.LoginAddrLimit = auth.Limit{N: 8, Per: time.Minute}
	}

	t.Run("real and unknown usernames alike", func(t *testing.T) {
		s := newServer(t, limits)
		s.addUser("alice", alicePassword)
		var answers [2][]string
		for i, name := range []string{"alice", "nobody"} {
			for range 4 {
				resp, body := s.wrongLogin(name, nil)
				answers[i] = append(answers[i], fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Retry-After"), body))
			}
		}
		for i := range answers[0] {
			if answers[0][i] != answers[1][i] {
				t.Errorf("attempt %d: real %s; unknown %s", i+1, answers[0][i], answers[1][i])
			}
		}
		if !strings.HasPrefix(answers[0][3], "429") {
			t.Errorf("4th failure: %s; want 429", answers[0][3])
		}
		resp, body := s.postToken(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword}})
		authtest.WantThrottled(t, resp, body) // even the right password, until the bucket refills
		s.clock.Advance(20 * time.Second)
		s.login("alice", alicePassword)
	})

	t.Run("success resets the username", func(t *testing.T) {
		s := newServer(t, limits)
		s.addUser("alice", alicePassword)
		for range 3 {
			for range 2 {
				resp, body := s.wrongLogin("alice", nil)
				authtest.WantOAuth(t, resp, body, 400, "invalid_grant")
			}
			s.login("alice", alicePassword)
		}
	})

	t.Run("per client address", func(t *testing.T) {
		s := newServer(t, limits)
		spoof := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
		for i := range 8 {
			resp, body := s.wrongLogin(fmt.Sprintf("user%d", i), spoof)
			authtest.WantOAuth(t, resp, body, 400, "invalid_grant")
		}
		// X-Forwarded-For is not trusted by default: same address.
		resp, body := s.wrongLogin("someone-else", http.Header{"X-Forwarded-For": {"198.51.100.1"}})
		authtest.WantThrottled(t, resp, body)
	})

	t.Run("successes do not use up the address", func(t *testing.T) {
		s := newServer(t, limits)
		var wg sync.WaitGroup
		for i := range 5 { // below both limits in flight at once
			name := fmt.Sprintf("client%d", i)
			s.addUser(name, alicePassword)
			wg.Go(func() {
				for range 10 {
					resp, body := s.postToken(url.Values{"grant_type": {"password"}, "username": {name}, "password": {alicePassword}})
					if resp.StatusCode != 200 {
						t.Errorf("concurrent login: %d %s", resp.StatusCode, body)
					}
				}
			})
		}
		wg.Wait()
		for i := range 8 {
			resp, body := s.wrongLogin(fmt.Sprintf("user%d", i), nil)
			authtest.WantOAuth(t, resp, body, 400, "invalid_grant")
		}
	})

	t.Run("trusted proxy header", func(t *testing.T) {
		s := newServer(t, limits, func(c config) { c.http.ClientIPHeader = "X-Forwarded-For" })
		for i := range 8 {
			s.wrongLogin(fmt.Sprintf("user%d", i), http.Header{"X-Forwarded-For": {"198.51.100.9, 203.0.113.7"}})
		}
		resp, body := s.wrongLogin("user9", http.Header{"X-Forwarded-For": {"203.0.113.7"}})
		authtest.WantThrottled(t, resp, body)
		resp, body = s.wrongLogin("user9", http.Header{"X-Forwarded-For": {"203.0.113.8"}})
		authtest.WantOAuth(t, resp, body, 400, "invalid_grant")
	})
}
