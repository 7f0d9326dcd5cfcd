package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

// Shorthands for the shared helpers of authtest.
var (
	testConfig     = authtest.Config
	mustOpenDB     = authtest.MustOpenDB
	mustService    = authtest.MustService
	mustCreateUser = authtest.MustCreateUser
)

func mustLogin(tb testing.TB, svc *auth.Service, username, password string) *auth.Grant {
	tb.Helper()
	g, err := svc.Login(context.Background(), auth.PasswordGrant{Username: username, Password: password})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// wantCode fails unless err is an *auth.Error with code.
func wantCode(tb testing.TB, err error, code auth.Code) *auth.Error {
	tb.Helper()
	ae, ok := errors.AsType[*auth.Error](err)
	if !ok || ae.Code != code {
		tb.Fatalf("err = %v; want code %s", err, code)
	}
	return ae
}

func TestLoginAnswersUnknownUserWrongPasswordAndDisabledAlike(t *testing.T) {
	svc, _, _ := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	bob := mustCreateUser(t, svc, "bob", "battery staple")
	if _, err := svc.SetUserDisabled(ctx, auth.Operator, bob.ID, true); err != nil {
		t.Fatal(err)
	}

	var messages []string
	for _, req := range []auth.PasswordGrant{
		{Username: "nobody", Password: "correct horse"},
		{Username: "alice", Password: "wrong password"},
		{Username: "bob", Password: "battery staple"},
		{Username: "alice", Password: "correct horse" + string(make([]byte, 80))},
	} {
		_, err := svc.Login(ctx, req)
		messages = append(messages, wantCode(t, err, auth.CodeInvalidGrant).Message)
	}
	for _, m := range messages[1:] {
		if m != messages[0] {
			t.Errorf("messages differ: %q", messages)
		}
	}
}

func TestLoginIgnoresUsernameCase(t *testing.T) {
	svc, _, _ := mustService(t)
	mustCreateUser(t, svc, "Alice", "correct horse")
	if g := mustLogin(t, svc, "aLICE", "correct horse"); g.User.Username != "Alice" {
		t.Errorf("username = %q; want Alice", g.User.Username)
	}
	_, err := svc.CreateUser(context.Background(), auth.NewUser{Username: "ALICE", Password: "another password"})
	if ae := wantCode(t, err, auth.CodeInvalidRequest); ae.Field != "username" {
		t.Errorf("field = %q; want username", ae.Field)
	}
}

func TestLoginScope(t *testing.T) {
	svc, _, _ := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse", "users:read", "users:write")
	for _, tc := range []struct {
		scope string
		want  string
		code  auth.Code
	}{
		{scope: "", want: "users:read users:write"},
		{scope: "users:write", want: "users:write"},
		{scope: "users:read users:read", want: "users:read"},
		{scope: "admin", code: auth.CodeInvalidScope},
		{scope: "users:read  users:write", code: auth.CodeInvalidScope},
		{scope: `bad"scope`, code: auth.CodeInvalidScope},
	} {
		g, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: "correct horse", Scope: tc.scope})
		if tc.code != "" {
			wantCode(t, err, tc.code)
			continue
		}
		if err != nil {
			t.Fatalf("scope %q: %v", tc.scope, err)
		}
		if got := auth.FormatScope(g.Scopes); got != tc.want {
			t.Errorf("scope %q: got %q; want %q", tc.scope, got, tc.want)
		}
	}
}

func TestLoginUpgradesWeakerHash(t *testing.T) {
	svc, store, c := mustService(t)
	ctx := context.Background()
	u := mustCreateUser(t, svc, "alice", "correct horse")
	stronger, err := auth.NewService(store, func() auth.Config { cfg := testConfig(c); cfg.BcryptCost = 5; return cfg }())
	if err != nil {
		t.Fatal(err)
	}
	mustLogin(t, stronger, "alice", "correct horse")
	_, cred, err := store.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cred.Hash[4:6]); got != "05" {
		t.Errorf("hash cost after login = %s; want 05", got)
	}
	mustLogin(t, stronger, "alice", "correct horse")
}

func TestRefreshRotates(t *testing.T) {
	svc, _, c := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse", "users:read")
	first := mustLogin(t, svc, "alice", "correct horse")

	c.Advance(time.Minute)
	second, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: first.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken {
		t.Error("refresh token did not rotate")
	}
	if second.Session.ID != first.Session.ID {
		t.Errorf("session = %s; want %s", second.Session.ID, first.Session.ID)
	}
	if _, err := svc.Authenticate(ctx, second.AccessToken, auth.Origin{}); err != nil {
		t.Errorf("new access token: %v", err)
	}
	if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: second.RefreshToken, Scope: "users:write"}); err == nil {
		t.Error("refresh widened the scope")
	} else {
		wantCode(t, err, auth.CodeInvalidScope)
	}
	_, err = svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: second.RefreshToken, Client: &auth.Client{ID: "other-app", GrantTypes: auth.GrantTypes}})
	wantCode(t, err, auth.CodeInvalidGrant)
}

func TestRefreshReplayWithinGraceGetsSameChild(t *testing.T) {
	svc, _, c := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	g := mustLogin(t, svc, "alice", "correct horse")

	a, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(9 * time.Second)
	b, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
	if err != nil {
		t.Fatalf("replay within grace: %v", err)
	}
	if a.RefreshToken != b.RefreshToken {
		t.Errorf("replay got %s; want the same child %s", b.RefreshToken, a.RefreshToken)
	}
	if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: b.RefreshToken}); err != nil {
		t.Errorf("child after replay: %v", err)
	}
}

func TestRefreshReplayAfterGraceRevokesSession(t *testing.T) {
	svc, _, c := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	g := mustLogin(t, svc, "alice", "correct horse")
	other := mustLogin(t, svc, "alice", "correct horse")

	child, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(11 * time.Second)
	_, err = svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
	wantCode(t, err, auth.CodeInvalidGrant)

	_, err = svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: child.RefreshToken})
	wantCode(t, err, auth.CodeInvalidGrant)
	_, err = svc.Authenticate(ctx, child.AccessToken, auth.Origin{})
	wantCode(t, err, auth.CodeInvalidToken)
	if _, err := svc.Authenticate(ctx, other.AccessToken, auth.Origin{}); err != nil {
		t.Errorf("another session of the user was revoked too: %v", err)
	}
}

func TestRefreshConcurrentlyGetsOneChild(t *testing.T) {
	svc, _, _ := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	g := mustLogin(t, svc, "alice", "correct horse")

	const n = 50
	var wg sync.WaitGroup
	tokens := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			grant, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
			if err == nil {
				tokens[i] = grant.RefreshToken
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("refresh %d got %s; want %s", i, tokens[i], tokens[0])
		}
	}
	if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: tokens[0]}); err != nil {
		t.Errorf("session was revoked by concurrent refreshes: %v", err)
	}
}

func TestRefreshAfterSessionExpiry(t *testing.T) {
	svc, _, c := mustService(t)
	mustCreateUser(t, svc, "alice", "correct horse")
	g := mustLogin(t, svc, "alice", "correct horse")
	c.Advance(24*time.Hour + time.Second)
	_, err := svc.Refresh(context.Background(), auth.RefreshGrant{RefreshToken: g.RefreshToken})
	wantCode(t, err, auth.CodeInvalidGrant)
}

func TestRefreshGarbage(t *testing.T) {
	svc, _, _ := mustService(t)
	for _, tok := range []string{"x", "not a token at all", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		_, err := svc.Refresh(context.Background(), auth.RefreshGrant{RefreshToken: tok})
		wantCode(t, err, auth.CodeInvalidGrant)
	}
}

func TestLogout(t *testing.T) {
	svc, _, _ := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	a := mustLogin(t, svc, "alice", "correct horse")
	b := mustLogin(t, svc, "alice", "correct horse")
	c := mustLogin(t, svc, "alice", "correct horse")

	id, err := svc.Authenticate(ctx, a.AccessToken, auth.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Authenticate(ctx, a.AccessToken, auth.Origin{})
	wantCode(t, err, auth.CodeInvalidToken)
	if id, err = svc.Authenticate(ctx, b.AccessToken, auth.Origin{}); err != nil {
		t.Fatalf("other session: %v", err)
	}
	if err := svc.Logout(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*auth.Grant{b, c} {
		_, err = svc.Authenticate(ctx, g.AccessToken, auth.Origin{})
		wantCode(t, err, auth.CodeInvalidToken)
		_, err = svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
		wantCode(t, err, auth.CodeInvalidGrant)
	}
}

func TestSignupClosed(t *testing.T) {
	svc, _, _ := mustService(t, func(c *auth.Config) { c.SignupClosed = true })
	_, err := svc.Signup(context.Background(), auth.NewUser{Username: "alice", Password: "correct horse"}, auth.Origin{})
	wantCode(t, err, auth.CodeForbidden)
}

func TestNewServiceRefusesShortSecret(t *testing.T) {
	c := authtest.NewClock(time.Time{})
	cfg := testConfig(c)
	cfg.Secret = []byte("too short")
	if _, err := auth.NewService(mustOpenDB(t), cfg); err == nil {
		t.Error("NewService accepted a 9-byte secret")
	}
}

// TestIdentityIsCheckedByTheService: every method that acts for an
// identity refuses a missing one itself, without relying on the schema's
// @auth; the Operator (the CLI) administers but has no session or password.
func TestIdentityIsCheckedByTheService(t *testing.T) {
	svc, _, _ := mustService(t)
	ctx := context.Background()
	alice := mustCreateUser(t, svc, "alice", "correct horse")
	calls := map[string]func(id *auth.Identity) error{
		"Logout":         func(id *auth.Identity) error { return svc.Logout(ctx, id, false) },
		"ChangePassword": func(id *auth.Identity) error { return svc.ChangePassword(ctx, id, "correct horse", "battery staple") },
		"RevokeSession":  func(id *auth.Identity) error { return svc.RevokeSession(ctx, id, "x") },
		"Sessions": func(id *auth.Identity) error {
			_, err := svc.Sessions(ctx, id, alice.ID)
			return err
		},
		"ListUsers": func(id *auth.Identity) error {
			_, err := svc.ListUsers(ctx, id, 10, "")
			return err
		},
		"SetUserDisabled": func(id *auth.Identity) error {
			_, err := svc.SetUserDisabled(ctx, id, alice.ID, false)
			return err
		},
		"SetUserScopes": func(id *auth.Identity) error {
			_, err := svc.SetUserScopes(ctx, id, alice.ID, []string{"any:scope"})
			return err
		},
	}
	operatorMay := map[string]bool{"Sessions": true, "ListUsers": true, "SetUserDisabled": true, "SetUserScopes": true}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantCode(t, call(nil), auth.CodeUnauthenticated)
			if err := call(auth.Operator); operatorMay[name] && err != nil {
				t.Errorf("as the operator: %v", err)
			} else if !operatorMay[name] {
				wantCode(t, err, auth.CodeUnauthenticated)
			}
		})
	}
}

// TestAdminMayDisableOnlyWhomTheirTokenCovers: with users:write an
// administrator may disable, enable or delete only users whose every scope
// their token carries, and never themselves; the Operator may do anything.
func TestAdminMayDisableOnlyWhomTheirTokenCovers(t *testing.T) {
	svc, _, _ := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "admin", "correct horse", "users:write", "users:read")
	root := mustCreateUser(t, svc, "root", "correct horse", "users:write", "billing:admin")
	peer := mustCreateUser(t, svc, "peer", "correct horse", "users:read")
	admin, err := svc.Authenticate(ctx, mustLogin(t, svc, "admin", "correct horse").AccessToken, auth.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetUserDisabled(ctx, auth.Operator, root.ID, true); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"re-enable a stronger user": func() error { _, err := svc.SetUserDisabled(ctx, admin, root.ID, false); return err }(),
		"disable themselves":        func() error { _, err := svc.SetUserDisabled(ctx, admin, admin.User.ID, true); return err }(),
		"delete a stronger user":    svc.DeleteUser(ctx, admin, root.ID),
		"delete themselves":         svc.DeleteUser(ctx, admin, admin.User.ID),
	} {
		if e := wantCode(t, err, auth.CodeForbidden); name == "re-enable a stronger user" && fmt.Sprint(e.RequiredScopes) != "[billing:admin]" {
			t.Errorf("%s: requiredScopes %v", name, e.RequiredScopes)
		}
	}
	if u, err := svc.UserByUsername(ctx, "root"); err != nil || !u.Disabled {
		t.Errorf("root after the attempts: %+v %v; want still disabled", u, err)
	}
	if _, err := svc.SetUserDisabled(ctx, admin, peer.ID, true); err != nil {
		t.Errorf("disabling a user the token covers: %v", err)
	}
	if err := svc.DeleteUser(ctx, admin, peer.ID); err != nil {
		t.Errorf("deleting a user the token covers: %v", err)
	}
}

// TestTheftDetectedAfterManyRotations: a thief who refreshes a stolen token
// many times cannot push it out of what theft detection remembers: the
// owner's replay of it still ends the session.
func TestTheftDetectedAfterManyRotations(t *testing.T) {
	svc, _, c := mustService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	stolen := mustLogin(t, svc, "alice", "correct horse")
	g := stolen
	for range 40 {
		c.Advance(time.Second)
		var err error
		if g, err = svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken}); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Minute)
	_, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: stolen.RefreshToken})
	wantCode(t, err, auth.CodeInvalidGrant)
	_, err = svc.Authenticate(ctx, g.AccessToken, auth.Origin{})
	wantCode(t, err, auth.CodeInvalidToken) // the thief's session ended
}

// TestRefreshesPerSessionAreBounded: a session rotates at most RefreshLimit
// times; replays within the grace window are not rotations.
func TestRefreshesPerSessionAreBounded(t *testing.T) {
	svc, _, c := mustService(t, func(cfg *auth.Config) { cfg.RefreshLimit = auth.Limit{N: 3, Per: time.Hour} })
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	g := mustLogin(t, svc, "alice", "correct horse")
	for i := range 3 {
		next, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken}); err != nil {
			t.Fatalf("replay %d within the grace window: %v", i, err)
		}
		g = next
	}
	_, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken})
	if e := wantCode(t, err, auth.CodeRateLimited); e.RetryAfter <= 0 {
		t.Errorf("RetryAfter = %v", e.RetryAfter)
	}
	c.Advance(20 * time.Minute)
	if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: g.RefreshToken}); err != nil {
		t.Errorf("once the bucket refilled: %v", err)
	}
	// Another session of the same user has its own budget.
	if _, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: mustLogin(t, svc, "alice", "correct horse").RefreshToken}); err != nil {
		t.Errorf("another session: %v", err)
	}
}

// TestPasswordChangeGuessesAreBoundedPerUser: wrong current passwords in
// changePassword count per user whatever the address, apart from logins,
// so a stolen access token cannot guess faster from many addresses, and
// the owner still logs in.
func TestPasswordChangeGuessesAreBoundedPerUser(t *testing.T) {
	svc, _, _ := mustService(t, func(cfg *auth.Config) { cfg.LoginUserLimit = auth.Limit{N: 3, Per: time.Hour} })
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	token := mustLogin(t, svc, "alice", "correct horse").AccessToken
	for i := range 4 {
		id, err := svc.Authenticate(ctx, token, auth.Origin{ClientAddr: fmt.Sprintf("2001:db8:%x::/64", i)})
		if err != nil {
			t.Fatal(err)
		}
		err = svc.ChangePassword(ctx, id, fmt.Sprint("guess ", i), "a brand new password")
		if i < 3 {
			wantCode(t, err, auth.CodeInvalidGrant)
		} else {
			wantCode(t, err, auth.CodeRateLimited)
		}
	}
	mustLogin(t, svc, "alice", "correct horse")
}

// countingRunner runs bcrypt work inline and counts it.
type countingRunner struct{ n atomic.Int64 }

func (r *countingRunner) Run(ctx context.Context, fn func()) error {
	r.n.Add(1)
	fn()
	return nil
}

// TestClientSecretChecksAreRemembered: a resource server introspecting
// every request costs one bcrypt comparison per few minutes, not one per
// request; a wrong secret, or a client registered again with another
// secret, is still checked and refused.
func TestClientSecretChecksAreRemembered(t *testing.T) {
	runner := &countingRunner{}
	svc, _, c := mustService(t, func(cfg *auth.Config) { cfg.BcryptPool = runner })
	ctx := context.Background()
	if _, err := svc.RegisterClient(ctx, auth.NewClient{ID: "api", Secret: "the api secret"}); err != nil {
		t.Fatal(err)
	}
	before := runner.n.Load()
	for range 10 {
		if _, err := svc.AuthenticateClient(ctx, "api", "the api secret", auth.Origin{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := runner.n.Load() - before; n != 1 {
		t.Errorf("%d bcrypt comparisons for 10 authentications; want 1", n)
	}
	_, err := svc.AuthenticateClient(ctx, "api", "not the secret", auth.Origin{})
	wantCode(t, err, auth.CodeInvalidClient)

	if err := svc.RemoveClient(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterClient(ctx, auth.NewClient{ID: "api", Secret: "a new api secret"}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.AuthenticateClient(ctx, "api", "the api secret", auth.Origin{})
	wantCode(t, err, auth.CodeInvalidClient)

	if _, err := svc.AuthenticateClient(ctx, "api", "a new api secret", auth.Origin{}); err != nil {
		t.Fatal(err)
	}
	c.Advance(6 * time.Minute)
	before = runner.n.Load()
	if _, err := svc.AuthenticateClient(ctx, "api", "a new api secret", auth.Origin{}); err != nil {
		t.Fatal(err)
	}
	if runner.n.Load() == before {
		t.Error("no bcrypt comparison once the remembered check expired")
	}
}
