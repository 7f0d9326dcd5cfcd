package auth_test

import (
	"context"
	"testing"

	"authql/auth"
	"authql/db/sqlite"
)

// pausingStore is the real database with a gate: a login that has read the
// user's credentials waits there until the test lets it go on, so that a
// change can commit while the password is being checked, as it does when
// bcrypt is slow.
type pausingStore struct {
	*sqlite.DB
	read    chan struct{} // a login has read the credentials
	proceed chan struct{} // let it go on
}

func (p *pausingStore) UserByUsername(ctx context.Context, key string) (*auth.User, auth.Credentials, error) {
	u, c, err := p.DB.UserByUsername(ctx, key)
	p.read <- struct{}{}
	<-p.proceed
	return u, c, err
}

// TestLoginInFlightLosesToCredentialChange: a login that checked the old
// password, or an enabled user, opens no session once a password change, an
// operator's reset or a disabling has committed; and the hash upgrade of
// such a login does not bring the old password back.
func TestLoginInFlightLosesToCredentialChange(t *testing.T) {
	const oldPassword, newPassword = "correct horse", "battery staple"
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, svc *auth.Service, u *auth.User, sessionOf *auth.Grant)
		// loginAfter is the password that must work after the change, or
		// "" when the user is disabled.
		loginAfter string
	}{
		{"changePassword", func(t *testing.T, svc *auth.Service, u *auth.User, g *auth.Grant) {
			id, err := svc.Authenticate(context.Background(), g.AccessToken, auth.Origin{})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.ChangePassword(context.Background(), id, oldPassword, newPassword); err != nil {
				t.Fatal(err)
			}
		}, newPassword},
		{"user passwd", func(t *testing.T, svc *auth.Service, u *auth.User, _ *auth.Grant) {
			if err := svc.SetPassword(context.Background(), u.ID, newPassword); err != nil {
				t.Fatal(err)
			}
		}, newPassword},
		{"user disable", func(t *testing.T, svc *auth.Service, u *auth.User, _ *auth.Grant) {
			if _, err := svc.SetUserDisabled(context.Background(), auth.Operator, u.ID, true); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, store, c := mustService(t)
			u := mustCreateUser(t, svc, "alice", oldPassword)
			first := mustLogin(t, svc, "alice", oldPassword)

			// A service at a higher cost, so that the racing login also
			// upgrades the hash it checked.
			gated := &pausingStore{DB: store, read: make(chan struct{}), proceed: make(chan struct{})}
			cfg := testConfig(c)
			cfg.BcryptCost = 5
			racing, err := auth.NewService(gated, cfg)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error)
			go func() {
				_, err := racing.Login(context.Background(), auth.PasswordGrant{Username: "alice", Password: oldPassword})
				done <- err
			}()
			<-gated.read
			tc.change(t, svc, u, first)
			close(gated.proceed)
			wantCode(t, <-done, auth.CodeInvalidGrant)

			_, err = svc.Login(context.Background(), auth.PasswordGrant{Username: "alice", Password: oldPassword})
			wantCode(t, err, auth.CodeInvalidGrant) // the old password stays gone
			if tc.loginAfter != "" {
				mustLogin(t, svc, "alice", tc.loginAfter)
			}
		})
	}
}

// pausingByID is the real database whose UserByID, which a password change
// reads the current hash with, waits for the test.
type pausingByID struct {
	*sqlite.DB
	read    chan struct{}
	proceed chan struct{}
}

func (p *pausingByID) UserByID(ctx context.Context, id string) (*auth.User, auth.Credentials, error) {
	u, c, err := p.DB.UserByID(ctx, id)
	p.read <- struct{}{}
	<-p.proceed
	return u, c, err
}

// TestPasswordChangeInFlightLosesToAnother: an attacker who knows the old
// password starts changePassword; the owner changes it first, which ends the
// attacker's session. The attacker's change, checked against the old
// password, must not commit after that.
func TestPasswordChangeInFlightLosesToAnother(t *testing.T) {
	const old, owners, attackers = "correct horse", "owner's new one", "attacker's pick"
	svc, store, c := mustService(t)
	mustCreateUser(t, svc, "alice", old)
	identify := func(s *auth.Service, g *auth.Grant) *auth.Identity {
		t.Helper()
		id, err := s.Authenticate(context.Background(), g.AccessToken, auth.Origin{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	owner := identify(svc, mustLogin(t, svc, "alice", old))
	gated := &pausingByID{DB: store, read: make(chan struct{}), proceed: make(chan struct{})}
	racing, err := auth.NewService(gated, testConfig(c))
	if err != nil {
		t.Fatal(err)
	}
	attacker := identify(svc, mustLogin(t, svc, "alice", old))
	done := make(chan error)
	go func() { done <- racing.ChangePassword(context.Background(), attacker, old, attackers) }()
	<-gated.read
	if err := svc.ChangePassword(context.Background(), owner, old, owners); err != nil {
		t.Fatal(err)
	}
	close(gated.proceed)
	wantCode(t, <-done, auth.CodeInvalidGrant)
	mustLogin(t, svc, "alice", owners)
	_, err = svc.Login(context.Background(), auth.PasswordGrant{Username: "alice", Password: attackers})
	wantCode(t, err, auth.CodeInvalidGrant)
	if _, err := svc.Authenticate(context.Background(), mustLogin(t, svc, "alice", owners).AccessToken, auth.Origin{}); err != nil {
		t.Errorf("the owner's new session: %v", err)
	}
}
