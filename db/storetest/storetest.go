// Package storetest is the conformance suite of authql's database
// adapters: every method of db.Database with each error it may return, and
// the races that must have one outcome however many processes or instances
// share the database. db/sqlite and db/postgres run it from their tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"authql/auth"
	"authql/db"
)

// Open returns a new, empty database for t, closed when t ends, and a
// function that opens another handle on the same database, as a second
// process or instance would.
type Open func(t *testing.T) (db.Database, func(t *testing.T) db.Database)

// Run runs the suite against the databases open makes.
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, open Open)
	}{
		{"Users", testUsers},
		{"UsernamesUniqueWithoutCase", testUsernamesUnique},
		{"PasswordHash", testPasswordHash},
		{"DisableDeleteScopes", testDisableDeleteScopes},
		{"ListUsers", testListUsers},
		{"MaxPasswordCost", testMaxPasswordCost},
		{"Sessions", testSessions},
		{"RefreshTokens", testRefreshTokens},
		{"Clients", testClients},
		{"SigningKeys", testSigningKeys},
		{"Settings", testSettings},
		{"Purge", testPurge},
		{"ConcurrentSignupsOfOneName", testConcurrentSignups},
		{"ConcurrentRefreshesOfOneToken", testConcurrentRefreshes},
		{"PasswordChangeRacingLogin", testPasswordChangeRacingLogin},
		{"LogoutRacingRefresh", testLogoutRacingRefresh},
		{"KeyRotationRacingItself", testConcurrentRotations},
		{"FirstKeyRacingItself", testConcurrentFirstKeys},
		{"Throttles", testThrottles},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open) })
	}
}

var ctx = context.Background()

// t0 has nanoseconds, which every time must keep through the database.
var t0 = time.Date(2026, 11, 30, 6, 40, 5, 123456789, time.UTC)

func newUser(name string) *auth.User {
	return &auth.User{ID: auth.NewID(), Username: name, Email: name + "@example.com", FullName: "Full " + name,
		Scopes: []string{"a", "b"}, CreatedAt: t0}
}

func mustCreateUser(t *testing.T, d db.Database, name string) *auth.User {
	t.Helper()
	u := newUser(name)
	if err := d.CreateUser(ctx, u, []byte("$2a$04$hash-of-"+name)); err != nil {
		t.Fatal(err)
	}
	return u
}

// mustCreateSession opens a session of u at t0 whose refresh token is the
// hash of its id, and returns it.
func mustCreateSession(t *testing.T, d db.Database, u *auth.User, version int64, addr string) *auth.Session {
	t.Helper()
	s := &auth.Session{ID: auth.NewID(), UserID: u.ID, ClientID: "app", UserAgent: "test/1", Scopes: []string{"a"},
		CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := d.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID),
		CredentialVersion: version, LoginAddr: addr}); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v; want %v", what, err, want)
	}
}

func testUsers(t *testing.T, open Open) {
	d, _ := open(t)
	u := mustCreateUser(t, d, "Alice")
	for _, get := range []func() (*auth.User, auth.Credentials, error){
		func() (*auth.User, auth.Credentials, error) { return d.UserByUsername(ctx, auth.UsernameKey("ALICE")) },
		func() (*auth.User, auth.Credentials, error) { return d.UserByID(ctx, u.ID) },
	} {
		got, cred, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || got.Username != "Alice" || got.Email != u.Email || got.FullName != u.FullName ||
			got.Disabled || !slices.Equal(got.Scopes, u.Scopes) || !got.CreatedAt.Equal(t0) {
			t.Errorf("read back %+v; want %+v", got, u)
		}
		if string(cred.Hash) != "$2a$04$hash-of-Alice" || cred.Version != 0 {
			t.Errorf("credentials %q version %d", cred.Hash, cred.Version)
		}
	}
	_, _, err := d.UserByUsername(ctx, auth.UsernameKey("nobody"))
	wantErr(t, "UserByUsername(unknown)", err, auth.ErrNotFound)
	_, _, err = d.UserByID(ctx, "no-such-id")
	wantErr(t, "UserByID(unknown)", err, auth.ErrNotFound)

	none := newUser("bob")
	none.Scopes = nil
	if err := d.CreateUser(ctx, none, []byte("h")); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := d.UserByID(ctx, none.ID); got.Scopes == nil || len(got.Scopes) != 0 {
		t.Errorf("scopes of a user without any: %#v; want an empty list", got.Scopes)
	}
}

func testUsernamesUnique(t *testing.T, open Open) {
	d, _ := open(t)
	mustCreateUser(t, d, "Straße")
	for _, name := range []string{"STRASSE", "straße", "ｓｔｒａｓｓｅ"} {
		err := d.CreateUser(ctx, newUser(name), []byte("h"))
		wantErr(t, fmt.Sprintf("CreateUser(%q)", name), err, auth.ErrUsernameTaken)
	}
}

func testPasswordHash(t *testing.T, open Open) {
	d, _ := open(t)
	u := mustCreateUser(t, d, "alice")
	kept := mustCreateSession(t, d, u, 0, "")
	other := mustCreateSession(t, d, u, 0, "")
	now := t0.Add(time.Minute)

	err := d.SetPasswordHash(ctx, u.ID, []byte("h1"), &auth.PasswordChange{Version: 7, KeepSession: kept.ID}, now)
	wantErr(t, "a change checked against another version", err, auth.ErrCredentialsChanged)
	err = d.SetPasswordHash(ctx, u.ID, []byte("h1"), &auth.PasswordChange{Version: 0, KeepSession: "gone"}, now)
	wantErr(t, "a change from a session that is not live", err, auth.ErrCredentialsChanged)
	if _, cred, _ := d.UserByID(ctx, u.ID); string(cred.Hash) == "h1" {
		t.Fatal("a refused change replaced the hash")
	}

	if err := d.SetPasswordHash(ctx, u.ID, []byte("h1"), &auth.PasswordChange{Version: 0, KeepSession: kept.ID}, now); err != nil {
		t.Fatal(err)
	}
	if _, cred, _ := d.UserByID(ctx, u.ID); string(cred.Hash) != "h1" || cred.Version != 1 {
		t.Errorf("after the change: %q version %d; want h1 version 1", cred.Hash, cred.Version)
	}
	live, err := d.Sessions(ctx, u.ID, now)
	if err != nil || len(live) != 1 || live[0].ID != kept.ID {
		t.Errorf("live sessions after the change: %v %v; want only the kept one", live, err)
	}
	if s, _, _ := d.SessionWithUser(ctx, other.ID); s.RevokedAt == nil || !s.RevokedAt.Equal(now) {
		t.Errorf("other session revoked at %v; want %v", s.RevokedAt, now)
	}

	// An operator's reset ends every session.
	if err := d.SetPasswordHash(ctx, u.ID, []byte("h2"), nil, now); err != nil {
		t.Fatal(err)
	}
	if live, _ := d.Sessions(ctx, u.ID, now); len(live) != 0 {
		t.Errorf("%d live sessions after a reset", len(live))
	}
	wantErr(t, "SetPasswordHash(unknown)", d.SetPasswordHash(ctx, "nobody", []byte("h"), nil, now), auth.ErrNotFound)
	wantErr(t, "SetPasswordHash(unknown, a change)",
		d.SetPasswordHash(ctx, "nobody", []byte("h"), &auth.PasswordChange{KeepSession: kept.ID}, now), auth.ErrNotFound)

	if ok, err := d.UpgradePasswordHash(ctx, u.ID, []byte("h3"), 1); ok || err != nil {
		t.Errorf("upgrade at a stale version: %v %v; want false", ok, err)
	}
	if ok, err := d.UpgradePasswordHash(ctx, u.ID, []byte("h3"), 2); !ok || err != nil {
		t.Errorf("upgrade at the current version: %v %v; want true", ok, err)
	}
	if _, cred, _ := d.UserByID(ctx, u.ID); string(cred.Hash) != "h3" || cred.Version != 2 {
		t.Errorf("after the upgrade: %q version %d; want h3 version 2 (an upgrade keeps the version)", cred.Hash, cred.Version)
	}
}

func testDisableDeleteScopes(t *testing.T, open Open) {
	d, _ := open(t)
	u := mustCreateUser(t, d, "alice")
	s := mustCreateSession(t, d, u, 0, "192.0.2.1")
	now := t0.Add(time.Minute)

	// A refusing check, which sees the user as it stands, changes nothing.
	errRefused := errors.New("refused")
	var checked *auth.User
	refuseAll := func(u *auth.User) error { checked = u; return errRefused }
	_, err := d.SetUserDisabled(ctx, u.ID, true, now, refuseAll)
	wantErr(t, "SetUserDisabled with a refusing check", err, errRefused)
	wantErr(t, "DeleteUser with a refusing check", d.DeleteUser(ctx, u.ID, refuseAll), errRefused)
	if checked == nil || checked.ID != u.ID || !slices.Equal(checked.Scopes, u.Scopes) {
		t.Errorf("the check saw %+v; want the user", checked)
	}
	if got, _, err := d.UserByID(ctx, u.ID); err != nil || got.Disabled {
		t.Fatalf("after refused checks: %+v %v; want the user, enabled", got, err)
	}

	got, err := d.SetUserDisabled(ctx, u.ID, true, now, func(*auth.User) error { return nil })
	if err != nil || !got.Disabled || got.ID != u.ID {
		t.Fatalf("disable: %+v %v", got, err)
	}
	if _, cred, _ := d.UserByID(ctx, u.ID); cred.Version != 1 {
		t.Errorf("version after disabling: %d; want 1", cred.Version)
	}
	if live, _ := d.Sessions(ctx, u.ID, now); len(live) != 0 {
		t.Error("disabling left a session live")
	}
	err = d.CreateSession(ctx, auth.NewSession{Session: &auth.Session{ID: auth.NewID(), UserID: u.ID,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}, RefreshHash: []byte("x"), CredentialVersion: 1})
	wantErr(t, "a session of a disabled user", err, auth.ErrCredentialsChanged)
	if got, err = d.SetUserDisabled(ctx, u.ID, false, now, nil); err != nil || got.Disabled {
		t.Fatalf("enable: %+v %v", got, err)
	}
	if _, cred, _ := d.UserByID(ctx, u.ID); cred.Version != 1 {
		t.Errorf("version after enabling: %d; want 1 (enabling changes no credential)", cred.Version)
	}
	_, err = d.SetUserDisabled(ctx, "nobody", true, now, nil)
	wantErr(t, "SetUserDisabled(unknown)", err, auth.ErrNotFound)

	var seen []string
	got, err = d.UpdateUserScopes(ctx, u.ID, func(current []string) ([]string, error) {
		seen = current
		return []string{"c"}, nil
	})
	if err != nil || !slices.Equal(seen, []string{"a", "b"}) || !slices.Equal(got.Scopes, []string{"c"}) {
		t.Errorf("UpdateUserScopes: saw %v, got %+v, %v", seen, got, err)
	}
	refuse := errors.New("refused")
	_, err = d.UpdateUserScopes(ctx, u.ID, func([]string) ([]string, error) { return nil, refuse })
	wantErr(t, "UpdateUserScopes(refusing update)", err, refuse)
	if got, _, _ := d.UserByID(ctx, u.ID); !slices.Equal(got.Scopes, []string{"c"}) {
		t.Errorf("a refused update changed the scopes to %v", got.Scopes)
	}
	_, err = d.UpdateUserScopes(ctx, "nobody", func(c []string) ([]string, error) { return c, nil })
	wantErr(t, "UpdateUserScopes(unknown)", err, auth.ErrNotFound)

	if known, err := d.KnownLoginAddress(ctx, auth.UsernameKey("alice"), "192.0.2.1", t0); !known || err != nil {
		t.Errorf("the login's address is not known: %v %v", known, err)
	}
	if known, _ := d.KnownLoginAddress(ctx, auth.UsernameKey("alice"), "192.0.2.1", t0.Add(time.Nanosecond)); known {
		t.Error("an address is known after its window")
	}
	if known, _ := d.KnownLoginAddress(ctx, auth.UsernameKey("alice"), "192.0.2.2", t0); known {
		t.Error("another address is known")
	}

	if err := d.DeleteUser(ctx, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteUser twice", d.DeleteUser(ctx, u.ID, nil), auth.ErrNotFound)
	_, _, err = d.SessionWithUser(ctx, s.ID)
	wantErr(t, "a deleted user's session", err, auth.ErrNotFound)
	_, err = d.RefreshToken(ctx, auth.HashToken(s.ID))
	wantErr(t, "a deleted user's refresh token", err, auth.ErrNotFound)
	if known, _ := d.KnownLoginAddress(ctx, auth.UsernameKey("alice"), "192.0.2.1", t0); known {
		t.Error("a deleted user's address is still known")
	}
	err = d.CreateSession(ctx, auth.NewSession{Session: &auth.Session{ID: auth.NewID(), UserID: u.ID,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}, RefreshHash: []byte("y")})
	wantErr(t, "a session of a deleted user", err, auth.ErrNotFound)
}

func testListUsers(t *testing.T, open Open) {
	d, _ := open(t)
	for i := range 5 {
		mustCreateUser(t, d, fmt.Sprintf("user%d", i))
	}
	var names []string
	cursor := ""
	for {
		users, cursors, err := d.ListUsers(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) == 0 {
			break
		}
		if len(cursors) != len(users) {
			t.Fatalf("%d cursors for %d users", len(cursors), len(users))
		}
		for _, u := range users {
			names = append(names, u.Username)
		}
		cursor = cursors[len(cursors)-1]
	}
	if fmt.Sprint(names) != "[user0 user1 user2 user3 user4]" {
		t.Errorf("pages = %v", names)
	}
	for _, bad := range []string{"x", "dXNlcjp4"} {
		_, _, err := d.ListUsers(ctx, bad, 2)
		wantErr(t, fmt.Sprintf("cursor %q", bad), err, auth.ErrBadCursor)
	}
}

// Client secrets are checked like passwords, so their cost counts toward
// what every check costs.
func testMaxPasswordCost(t *testing.T, open Open) {
	d, _ := open(t)
	if cost, err := d.MaxPasswordCost(ctx); err != nil || cost != 0 {
		t.Fatalf("empty database: %d %v", cost, err)
	}
	if err := d.CreateUser(ctx, newUser("alice"), []byte("$2a$05$abcdefghijklmnopqrstuu")); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateClient(ctx, &auth.Client{ID: "app", GrantTypes: auth.GrantTypes, CreatedAt: t0},
		[]byte("$2a$09$abcdefghijklmnopqrstuu")); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateClient(ctx, &auth.Client{ID: "spa", GrantTypes: auth.GrantTypes, CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	if cost, err := d.MaxPasswordCost(ctx); err != nil || cost != 9 {
		t.Errorf("MaxPasswordCost = %d, %v; want 9, the client secret's", cost, err)
	}
}

func testSessions(t *testing.T, open Open) {
	d, _ := open(t)
	u := mustCreateUser(t, d, "alice")
	older := mustCreateSession(t, d, u, 0, "")
	newer := &auth.Session{ID: auth.NewID(), UserID: u.ID, Scopes: []string{}, CreatedAt: t0.Add(time.Second),
		LastUsedAt: t0.Add(time.Second), ExpiresAt: t0.Add(2 * time.Hour)}
	if err := d.CreateSession(ctx, auth.NewSession{Session: newer, RefreshHash: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	err := d.CreateSession(ctx, auth.NewSession{Session: &auth.Session{ID: auth.NewID(), UserID: u.ID,
		CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0}, RefreshHash: []byte("s"), CredentialVersion: 3})
	wantErr(t, "a session checked against another version", err, auth.ErrCredentialsChanged)
	err = d.CreateSession(ctx, auth.NewSession{Session: &auth.Session{ID: auth.NewID(), UserID: u.ID, ClientID: "removed",
		CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0}, RefreshHash: []byte("t"), ClientRegistered: true})
	wantErr(t, "a session through a client removed since the login authenticated it", err, auth.ErrCredentialsChanged)
	if err := d.CreateClient(ctx, &auth.Client{ID: "kept", GrantTypes: auth.GrantTypes, CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateSession(ctx, auth.NewSession{Session: &auth.Session{ID: auth.NewID(), UserID: u.ID, ClientID: "kept",
		CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0}, RefreshHash: []byte("u"), ClientRegistered: true}); err != nil {
		t.Errorf("a session through a registered client: %v", err)
	}

	s, su, err := d.SessionWithUser(ctx, older.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != older.ID || s.UserID != u.ID || s.ClientID != "app" || s.UserAgent != "test/1" ||
		!slices.Equal(s.Scopes, []string{"a"}) || !s.CreatedAt.Equal(t0) || !s.LastUsedAt.Equal(t0) ||
		!s.ExpiresAt.Equal(t0.Add(time.Hour)) || s.RevokedAt != nil || su.ID != u.ID || su.Username != "alice" {
		t.Errorf("SessionWithUser = %+v %+v", s, su)
	}
	_, _, err = d.SessionWithUser(ctx, "no-such-session")
	wantErr(t, "SessionWithUser(unknown)", err, auth.ErrNotFound)

	live, err := d.Sessions(ctx, u.ID, t0.Add(time.Minute))
	if err != nil || len(live) != 2 || live[0].ID != newer.ID || live[1].ID != older.ID {
		t.Errorf("Sessions = %v %v; want newest first", live, err)
	}
	if live, _ := d.Sessions(ctx, u.ID, t0.Add(time.Hour)); len(live) != 1 {
		t.Errorf("%d live sessions once one expired; want 1", len(live))
	}
	if n, err := d.CountLiveSessions(ctx, t0.Add(time.Minute)); n != 2 || err != nil {
		t.Errorf("CountLiveSessions = %d %v; want 2", n, err)
	}

	other := mustCreateUser(t, d, "bob")
	now := t0.Add(time.Minute)
	wantErr(t, "RevokeSession of another user's session", d.RevokeSession(ctx, other.ID, older.ID, now), auth.ErrNotFound)
	if err := d.RevokeSession(ctx, u.ID, older.ID, now); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RevokeSession twice", d.RevokeSession(ctx, u.ID, older.ID, now), auth.ErrNotFound)
	if s, _, _ := d.SessionWithUser(ctx, older.ID); s.RevokedAt == nil || !s.RevokedAt.Equal(now) {
		t.Errorf("revoked at %v; want %v", s.RevokedAt, now)
	}
	if err := d.RevokeSessions(ctx, u.ID, now); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.CountLiveSessions(ctx, now); n != 0 {
		t.Errorf("%d live sessions after RevokeSessions", n)
	}
}

func testRefreshTokens(t *testing.T, open Open) {
	d, _ := open(t)
	u := mustCreateUser(t, d, "alice")
	s := mustCreateSession(t, d, u, 0, "")
	parent, child := auth.HashToken(s.ID), auth.HashToken("child")

	rt, err := d.RefreshToken(ctx, parent)
	if err != nil || rt.Session.ID != s.ID || rt.User.ID != u.ID || rt.RotatedAt != nil {
		t.Fatalf("RefreshToken = %+v %v", rt, err)
	}
	_, err = d.RefreshToken(ctx, auth.HashToken("unknown"))
	wantErr(t, "RefreshToken(unknown)", err, auth.ErrNotFound)

	now, expires := t0.Add(time.Minute), t0.Add(3*time.Hour)
	if ok, err := d.RotateRefreshToken(ctx, parent, child, now, expires); !ok || err != nil {
		t.Fatalf("rotation: %v %v", ok, err)
	}
	if ok, err := d.RotateRefreshToken(ctx, parent, auth.HashToken("another"), now, expires); ok || err != nil {
		t.Errorf("second rotation of one token: %v %v; want false", ok, err)
	}
	if rt, _ := d.RefreshToken(ctx, parent); rt.RotatedAt == nil || !rt.RotatedAt.Equal(now) {
		t.Errorf("parent rotated at %v; want %v", rt.RotatedAt, now)
	}
	rt, err = d.RefreshToken(ctx, child)
	if err != nil || rt.RotatedAt != nil || !rt.Session.LastUsedAt.Equal(now) || !rt.Session.ExpiresAt.Equal(expires) {
		t.Errorf("child: %+v %v", rt, err)
	}
	if _, err := d.RefreshToken(ctx, auth.HashToken("another")); !errors.Is(err, auth.ErrNotFound) {
		t.Error("a losing rotation stored its child")
	}

	// A session that ended since its token was read rotates nothing.
	_, err = d.RotateRefreshToken(ctx, auth.HashToken("unknown"), auth.HashToken("x"), now, expires)
	wantErr(t, "rotating an unknown token", err, auth.ErrNotFound)
	if err := d.RevokeSession(ctx, u.ID, s.ID, now); err != nil {
		t.Fatal(err)
	}
	_, err = d.RotateRefreshToken(ctx, child, auth.HashToken("grandchild"), now, expires)
	wantErr(t, "rotating the token of a revoked session", err, auth.ErrNotFound)
	ended := mustCreateSession(t, d, u, 0, "") // expires at t0 + 1h
	_, err = d.RotateRefreshToken(ctx, auth.HashToken(ended.ID), auth.HashToken("late"), t0.Add(time.Hour), t0.Add(2*time.Hour))
	wantErr(t, "rotating the token of an expired session", err, auth.ErrNotFound)
	for _, h := range []string{"grandchild", "late"} {
		if _, err := d.RefreshToken(ctx, auth.HashToken(h)); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("a refused rotation stored its child %q", h)
		}
	}
}

func testClients(t *testing.T, open Open) {
	d, _ := open(t)
	app := &auth.Client{ID: "app", GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"x", "y"}, CreatedAt: t0}
	if err := d.CreateClient(ctx, app, []byte("secret-hash")); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateClient(ctx, &auth.Client{ID: "spa", GrantTypes: []string{"password"}, CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateClient(taken id)", d.CreateClient(ctx, &auth.Client{ID: "app", GrantTypes: auth.GrantTypes}, nil), auth.ErrClientExists)

	c, hash, err := d.ClientByID(ctx, "app")
	if err != nil || !c.Confidential || !c.Registered || string(hash) != "secret-hash" ||
		!slices.Equal(c.GrantTypes, app.GrantTypes) || !slices.Equal(c.Scopes, app.Scopes) || !c.CreatedAt.Equal(t0) {
		t.Errorf("ClientByID = %+v %q %v", c, hash, err)
	}
	if c, hash, _ := d.ClientByID(ctx, "spa"); c.Confidential || hash != nil {
		t.Errorf("public client: %+v %q", c, hash)
	}
	_, _, err = d.ClientByID(ctx, "nope")
	wantErr(t, "ClientByID(unknown)", err, auth.ErrNotFound)
	all, err := d.Clients(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "app" || all[1].ID != "spa" {
		t.Errorf("Clients = %v %v", all, err)
	}

	u := mustCreateUser(t, d, "alice") // scopes a b
	if scopes, err := d.Scopes(ctx); err != nil || fmt.Sprint(scopes) != "[a b x y]" {
		t.Errorf("Scopes = %v %v", scopes, err)
	}

	s := mustCreateSession(t, d, u, 0, "") // through "app"
	now := t0.Add(time.Minute)
	if err := d.DeleteClient(ctx, "app", now); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteClient twice", d.DeleteClient(ctx, "app", now), auth.ErrNotFound)
	if s, _, _ := d.SessionWithUser(ctx, s.ID); s.RevokedAt == nil {
		t.Error("deleting a client left its sessions live")
	}
}

func testSigningKeys(t *testing.T, open Open) {
	d, _ := open(t)
	key := func(id string, created, active time.Time) *auth.SigningKey {
		return &auth.SigningKey{ID: id, Algorithm: "ES256", Private: []byte("der-" + id), CreatedAt: created, ActiveAt: active}
	}
	now := t0
	if ok, err := d.AddSigningKey(ctx, key("k1", now, now), now); !ok || err != nil {
		t.Fatalf("first key: %v %v", ok, err)
	}
	if ok, err := d.AddSigningKey(ctx, key("k2", now.Add(time.Second), now.Add(time.Hour)), now); !ok || err != nil {
		t.Fatalf("waiting key: %v %v", ok, err)
	}
	if ok, err := d.AddSigningKey(ctx, key("k3", now.Add(2*time.Second), now.Add(time.Hour)), now); ok || err != nil {
		t.Errorf("a second waiting key: %v %v; want refused", ok, err)
	}
	if ok, err := d.AddSigningKey(ctx, key("k4", now.Add(3*time.Second), now), now); ok || err != nil {
		t.Errorf("a second key of one algorithm active at once: %v %v; want refused", ok, err)
	}
	other := key("k4", now.Add(3*time.Second), now)
	other.Algorithm = "EdDSA"
	if ok, err := d.AddSigningKey(ctx, other, now); !ok || err != nil {
		t.Errorf("the first key of another algorithm, active at once beside a waiting one: %v %v; want added", ok, err)
	}
	keys, err := d.SigningKeys(ctx)
	if err != nil || len(keys) != 3 || keys[0].ID != "k1" || keys[1].ID != "k2" || keys[2].ID != "k4" {
		t.Fatalf("SigningKeys = %v %v", keys, err)
	}
	if k := keys[1]; k.Algorithm != "ES256" || string(k.Private) != "der-k2" || !k.CreatedAt.Equal(now.Add(time.Second)) ||
		!k.ActiveAt.Equal(now.Add(time.Hour)) || k.RevokedAt != nil {
		t.Errorf("k2 read back as %+v", k)
	}
	if err := d.RevokeSigningKey(ctx, "k2", now); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RevokeSigningKey twice", d.RevokeSigningKey(ctx, "k2", now), auth.ErrNotFound)
	wantErr(t, "RevokeSigningKey(unknown)", d.RevokeSigningKey(ctx, "nope", now), auth.ErrNotFound)
	if ok, _ := d.AddSigningKey(ctx, key("k5", now.Add(4*time.Second), now.Add(time.Hour)), now); !ok {
		t.Error("a revoked waiting key still blocks a rotation")
	}
}

func testSettings(t *testing.T, open Open) {
	d, again := open(t)
	_, err := d.Setting(ctx, "missing")
	wantErr(t, "Setting(missing)", err, auth.ErrNotFound)
	if err := d.SetSetting(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := d.SetSetting(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Setting(ctx, "k"); string(v) != "v2" || err != nil {
		t.Errorf("Setting = %q %v; want v2", v, err)
	}

	// Every process making the secret at once gets the first one stored.
	handles := []db.Database{d, again(t)}
	got := make([][]byte, 20)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			v, err := handles[i%2].Secret(ctx, "secret", auth.GenerateSecret)
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got {
		if string(v) != string(got[0]) || len(v) == 0 {
			t.Fatal("concurrent Secret calls got different secrets")
		}
	}
	if d.Ping(ctx) != nil {
		t.Error("Ping failed")
	}
}

func testPurge(t *testing.T, open Open) {
	d, _ := open(t)
	u := mustCreateUser(t, d, "alice")
	session := func(expires time.Time) *auth.Session {
		s := &auth.Session{ID: auth.NewID(), UserID: u.ID, CreatedAt: t0, LastUsedAt: t0, ExpiresAt: expires}
		if err := d.CreateSession(ctx, auth.NewSession{Session: s, RefreshHash: auth.HashToken(s.ID), LoginAddr: "192.0.2.9"}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := session(t0.Add(time.Hour))
	revoked := session(t0.Add(100 * time.Hour))
	live := session(t0.Add(100 * time.Hour))
	if err := d.RevokeSession(ctx, u.ID, revoked.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	hash := func(i int) []byte { return auth.HashToken(fmt.Sprint("token ", i)) }
	prev := auth.HashToken(live.ID)
	for i := range 10 { // rotated at minutes 1..10
		now := t0.Add(time.Duration(i+1) * time.Minute)
		if ok, err := d.RotateRefreshToken(ctx, prev, hash(i), now, t0.Add(100*time.Hour)); err != nil || !ok {
			t.Fatalf("rotation %d: %v %v", i, ok, err)
		}
		prev = hash(i)
	}
	n, err := d.PurgeSessions(ctx, t0.Add(3*time.Hour), t0.Add(5*time.Minute+time.Second), t0)
	if err != nil || n != 2 {
		t.Fatalf("purged %d, %v; want 2", n, err)
	}
	for _, s := range []*auth.Session{expired, revoked} {
		_, err := d.RefreshToken(ctx, auth.HashToken(s.ID))
		wantErr(t, "the refresh token of a purged session", err, auth.ErrNotFound)
	}
	if _, _, err := d.SessionWithUser(ctx, live.ID); err != nil {
		t.Errorf("live session: %v", err)
	}
	// The live session's tokens rotated at minutes 1..5 go (its first
	// token and tokens 0..3); later ones stay, so that a replay of a recent
	// one is still recognised as theft.
	for i := range 10 {
		_, err := d.RefreshToken(ctx, hash(i))
		if gone := errors.Is(err, auth.ErrNotFound); gone != (i < 4) {
			t.Errorf("token %d: %v; want purged %v", i, err, i < 4)
		}
	}
	if known, _ := d.KnownLoginAddress(ctx, auth.UsernameKey("alice"), "192.0.2.9", t0); !known {
		t.Error("an address used at the cutoff was purged")
	}
	if _, err := d.PurgeSessions(ctx, t0, t0, t0.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if known, _ := d.KnownLoginAddress(ctx, auth.UsernameKey("alice"), "192.0.2.9", t0); known {
		t.Error("an address used before the cutoff was kept")
	}
}
