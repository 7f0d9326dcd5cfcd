package auth_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/auth/authtest"
)

// outcomes records what a Service tells its Observer.
type outcomes struct {
	mu                sync.Mutex
	logins, refreshes []auth.Outcome
}

func (o *outcomes) ObserveLogin(x auth.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logins = append(o.logins, x)
}

func (o *outcomes) ObserveRefresh(x auth.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refreshes = append(o.refreshes, x)
}

// take returns the outcomes recorded since the last take.
func (o *outcomes) take() (logins, refreshes []auth.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	logins, refreshes = o.logins, o.refreshes
	o.logins, o.refreshes = nil, nil
	return logins, refreshes
}

// stubRunner is a bcrypt Runner that runs nothing and returns err, or
// ctx.Err() when err is nil.
type stubRunner struct{ err error }

func (r stubRunner) Run(ctx context.Context, fn func()) error {
	if r.err != nil {
		return r.err
	}
	return ctx.Err()
}

// Each login is reported once, with the outcome its error gives it.
func TestLoginOutcomes(t *testing.T) {
	ctx := context.Background()
	seen := &outcomes{}
	svc, _, _ := authtest.MustService(t, func(c *auth.Config) {
		c.Metrics = seen
		c.LoginPairLimit = auth.Limit{N: 2, Per: time.Hour}
	})
	authtest.MustCreateUser(t, svc, "alice", authtest.AlicePassword, "users:read")
	from := auth.Origin{ClientAddr: "192.0.2.1"}
	login := func(password, scope string) error {
		_, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: password, Scope: scope, Origin: from})
		return err
	}
	for _, tc := range []struct {
		name  string
		login func() error
		want  auth.Outcome
	}{
		{"success", func() error { return login(authtest.AlicePassword, "") }, auth.OutcomeSuccess},
		{"scope not granted", func() error { return login(authtest.AlicePassword, "users:write") }, auth.OutcomeRejected},
		{"client without the grant", func() error {
			client := &auth.Client{ID: "reports", GrantTypes: []string{auth.GrantRefreshToken}}
			_, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: authtest.AlicePassword, Client: client, Origin: from})
			return err
		}, auth.OutcomeRejected},
		{"wrong password", func() error { return login("not the password", "") }, auth.OutcomeInvalidGrant},
		{"unknown user", func() error {
			_, err := svc.Login(ctx, auth.PasswordGrant{Username: "nobody", Password: "x", Origin: from})
			return err
		}, auth.OutcomeInvalidGrant},
		{"second wrong password", func() error { return login("not the password", "") }, auth.OutcomeInvalidGrant},
		{"throttled", func() error { return login(authtest.AlicePassword, "") }, auth.OutcomeThrottled},
	} {
		err := tc.login()
		logins, refreshes := seen.take()
		if !slices.Equal(logins, []auth.Outcome{tc.want}) || refreshes != nil {
			t.Errorf("%s (err %v): logins %v, refreshes %v; want logins [%s]", tc.name, err, logins, refreshes, tc.want)
		}
	}
}

// Logins whose bcrypt work does not run, and a service without keys.
func TestLoginOutcomesOfFaults(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		edit func(*auth.Config)
		want auth.Outcome
	}{
		{"no bcrypt worker in time", context.Background(),
			func(c *auth.Config) { c.BcryptPool = stubRunner{errors.New("busy")} }, auth.OutcomeUnavailable},
		{"client gone", canceled,
			func(c *auth.Config) { c.BcryptPool = stubRunner{} }, auth.OutcomeCanceled},
		{"no keys", context.Background(),
			func(c *auth.Config) { c.Secret, c.RefreshSecret = nil, nil }, auth.OutcomeError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := &outcomes{}
			svc, store, clock := authtest.MustService(t, func(c *auth.Config) {
				c.Metrics = seen
				tc.edit(c)
			})
			// alice is created by a service whose bcrypt work runs.
			plain, err := auth.NewService(store, authtest.Config(clock))
			if err != nil {
				t.Fatal(err)
			}
			authtest.MustCreateUser(t, plain, "alice", authtest.AlicePassword)
			_, err = svc.Login(tc.ctx, auth.PasswordGrant{Username: "alice", Password: authtest.AlicePassword})
			if logins, _ := seen.take(); !slices.Equal(logins, []auth.Outcome{tc.want}) {
				t.Errorf("logins %v (err %v); want [%s]", logins, err, tc.want)
			}
		})
	}
}

// Each refresh is reported once; a rotated token replayed after the grace
// window is reuse_detected, within it a success.
func TestRefreshOutcomes(t *testing.T) {
	ctx := context.Background()
	seen := &outcomes{}
	svc, _, clock := authtest.MustService(t, func(c *auth.Config) { c.Metrics = seen })
	authtest.MustCreateUser(t, svc, "alice", authtest.AlicePassword)
	g, err := svc.Login(ctx, auth.PasswordGrant{Username: "alice", Password: authtest.AlicePassword})
	if err != nil {
		t.Fatal(err)
	}
	seen.take()
	refresh := func(token, scope string) func() error {
		return func() error {
			_, err := svc.Refresh(ctx, auth.RefreshGrant{RefreshToken: token, Scope: scope})
			return err
		}
	}
	for _, tc := range []struct {
		name    string
		refresh func() error
		want    auth.Outcome
	}{
		{"success", refresh(g.RefreshToken, ""), auth.OutcomeSuccess},
		{"replay within the grace window", refresh(g.RefreshToken, ""), auth.OutcomeSuccess},
		{"scope beyond the session's", refresh(g.RefreshToken, "users:write"), auth.OutcomeRejected},
		{"unknown token", refresh("not a refresh token", ""), auth.OutcomeInvalidGrant},
		{"replay after the grace window", func() error {
			clock.Advance(11 * time.Second)
			return refresh(g.RefreshToken, "")()
		}, auth.OutcomeReuseDetected},
		{"the revoked session's token", refresh(g.RefreshToken, ""), auth.OutcomeInvalidGrant},
	} {
		err := tc.refresh()
		logins, refreshes := seen.take()
		if !slices.Equal(refreshes, []auth.Outcome{tc.want}) || logins != nil {
			t.Errorf("%s (err %v): refreshes %v, logins %v; want refreshes [%s]", tc.name, err, refreshes, logins, tc.want)
		}
	}
}
