package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/auth"
)

// keyedService is a service with asymmetric keys of alg over a new
// database, its first key made.
func keyedService(t *testing.T, edit ...func(*auth.Config)) (*auth.Service, func(time.Duration)) {
	t.Helper()
	svc, _, c := mustService(t, append([]func(*auth.Config){func(cfg *auth.Config) {
		cfg.Secret, cfg.SigningAlgorithm = nil, auth.AlgES256
		cfg.KeyRotationInterval = 30 * 24 * time.Hour
	}}, edit...)...)
	if err := svc.LoadSigningKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc, c.Advance
}

func states(t *testing.T, svc *auth.Service) string {
	t.Helper()
	keys, err := svc.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, k := range keys {
		out += string(k.State) + " "
	}
	return out
}

// TestRotationLogsNobodyOut: a new key is published first and signs only
// after the lead time; tokens signed before, during and after the
// rotation all verify until they expire; the old key is published until
// its last token has expired, then retires.
func TestRotationLogsNobodyOut(t *testing.T) {
	svc, advance := keyedService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	verifies := func(name, token string) {
		t.Helper()
		if _, err := svc.Authenticate(ctx, token, auth.Origin{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	before := mustLogin(t, svc, "alice", "correct horse").AccessToken
	verifies("a token signed before the rotation", before)
	if got := states(t, svc); got != "active " {
		t.Fatalf("states = %q", got)
	}

	pending, ok, err := svc.RotateSigningKey(ctx)
	if err != nil || !ok {
		t.Fatalf("rotate: %v %v", ok, err)
	}
	if _, again, _ := svc.RotateSigningKey(ctx); again {
		t.Error("a second rotation while one is pending added a key")
	}
	if got := states(t, svc); got != "active pending " || len(svc.PublicKeys()) != 2 {
		t.Fatalf("during the lead time: states %q, %d published; want both published", got, len(svc.PublicKeys()))
	}
	advance(59 * time.Minute)
	during := mustLogin(t, svc, "alice", "correct horse").AccessToken // still the old key

	advance(2 * time.Minute)
	if err := svc.MaintainSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := states(t, svc); got != "retiring active " {
		t.Fatalf("after the lead time: %q", got)
	}
	after := mustLogin(t, svc, "alice", "correct horse").AccessToken
	if kidOf(t, after) != pending.ID || kidOf(t, during) == pending.ID {
		t.Errorf("after the lead time the new key %s should sign: during %s, after %s", pending.ID, kidOf(t, during), kidOf(t, after))
	}
	verifies("a token signed by the old key during the lead time", during)
	verifies("a token signed by the new key", after)

	advance(15 * time.Minute)
	if err := svc.MaintainSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := states(t, svc); got != "retired active " || len(svc.PublicKeys()) != 1 {
		t.Errorf("once the old key's tokens expired: %q, %d published", got, len(svc.PublicKeys()))
	}
}

// TestRevokedKeyIsRefusedAtOnce: a revoked key's tokens are refused on the
// next request, cached or not, and a new key signs at once.
func TestRevokedKeyIsRefusedAtOnce(t *testing.T) {
	svc, _ := keyedService(t)
	ctx := context.Background()
	mustCreateUser(t, svc, "alice", "correct horse")
	tok := mustLogin(t, svc, "alice", "correct horse").AccessToken
	if _, err := svc.Authenticate(ctx, tok, auth.Origin{}); err != nil { // now cached
		t.Fatal(err)
	}
	if err := svc.RevokeSigningKey(ctx, kidOf(t, tok)); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Authenticate(ctx, tok, auth.Origin{})
	wantCode(t, err, auth.CodeInvalidToken)
	next := mustLogin(t, svc, "alice", "correct horse").AccessToken
	if kidOf(t, next) == kidOf(t, tok) {
		t.Error("the revoked key still signs")
	}
	if _, err := svc.Authenticate(ctx, next, auth.Origin{}); err != nil {
		t.Errorf("a token of the new key: %v", err)
	}
	err = svc.RevokeSigningKey(ctx, "no-such-kid")
	wantCode(t, err, auth.CodeInvalidRequest)
}

// TestConcurrentRotationsLeaveOnePendingKey: instances rotating at the same
// moment, without a leader, leave one pending key.
func TestConcurrentRotationsLeaveOnePendingKey(t *testing.T) {
	svc, _ := keyedService(t)
	var wg sync.WaitGroup
	added := make(chan bool, 8)
	for range 8 {
		wg.Go(func() {
			_, ok, err := svc.RotateSigningKey(context.Background())
			if err != nil {
				t.Error(err)
			}
			added <- ok
		})
	}
	wg.Wait()
	close(added)
	n := 0
	for ok := range added {
		if ok {
			n++
		}
	}
	if got := states(t, svc); n != 1 || got != "active pending " {
		t.Errorf("%d rotations added a key; states %q; want one pending", n, got)
	}
}

// TestKeysRotateByThemselves: MaintainSigningKeys starts a rotation once
// the signing key is KeyRotationInterval old, and not before.
func TestKeysRotateByThemselves(t *testing.T) {
	svc, advance := keyedService(t, func(cfg *auth.Config) { cfg.KeyRotationInterval = 24 * time.Hour })
	ctx := context.Background()
	advance(23 * time.Hour)
	svc.MaintainSigningKeys(ctx)
	if got := states(t, svc); got != "active " {
		t.Fatalf("before the interval: %q", got)
	}
	advance(time.Hour)
	svc.MaintainSigningKeys(ctx)
	if got := states(t, svc); got != "active pending " {
		t.Errorf("at the interval: %q", got)
	}
}

// kidOf reads the kid of a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	var kid string
	for _, k := range keyIDs(token) {
		kid = k
	}
	if kid == "" {
		t.Fatalf("no kid in %s", fmt.Sprint(token[:20]))
	}
	return kid
}

func keyIDs(token string) []string {
	var hdr struct {
		Kid string `json:"kid"`
	}
	parts := strings.SplitN(token, ".", 2)
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(b, &hdr) != nil {
		return nil
	}
	return []string{hdr.Kid}
}

// TestFirstKeyDespiteAPendingOne: a rotation started by the CLI before the
// server ever ran leaves only a pending key; the server still makes a key
// that signs at once.
func TestFirstKeyDespiteAPendingOne(t *testing.T) {
	svc, store, _ := mustService(t, func(cfg *auth.Config) { cfg.Secret, cfg.SigningAlgorithm = nil, auth.AlgEdDSA })
	cli, err := auth.NewService(store, auth.Config{SigningAlgorithm: auth.AlgEdDSA, Issuer: "x", AccessTokenTTL: time.Minute,
		RefreshTokenTTL: time.Hour, BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := cli.RotateSigningKey(context.Background()); err != nil || !ok {
		t.Fatalf("rotate: %v %v", ok, err)
	}
	if err := svc.LoadSigningKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, svc, "alice", "correct horse")
	mustLogin(t, svc, "alice", "correct horse")
	if got := states(t, svc); got != "active pending " && got != "pending active " {
		t.Errorf("states %q", got)
	}
}

// TestRevocationByAnotherProcess: a key revoked through another service on
// the same database (the CLI, another instance) stops verifying here as
// soon as this service reads the keys again, which the server does every
// second.
func TestRevocationByAnotherProcess(t *testing.T) {
	svc, store, c := mustService(t, func(cfg *auth.Config) { cfg.Secret, cfg.SigningAlgorithm = nil, auth.AlgES256 })
	ctx := context.Background()
	if err := svc.LoadSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, svc, "alice", "correct horse")
	tok := mustLogin(t, svc, "alice", "correct horse").AccessToken
	if _, err := svc.Authenticate(ctx, tok, auth.Origin{}); err != nil {
		t.Fatal(err)
	}
	cli, err := auth.NewService(store, auth.Config{SigningAlgorithm: auth.AlgES256, Issuer: "x",
		AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour, BcryptCost: 4, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.RevokeSigningKey(ctx, kidOf(t, tok)); err != nil {
		t.Fatal(err)
	}
	if err := svc.LoadSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Authenticate(ctx, tok, auth.Origin{})
	wantCode(t, err, auth.CodeInvalidToken)
	next := mustLogin(t, svc, "alice", "correct horse").AccessToken
	if _, err := svc.Authenticate(ctx, next, auth.Origin{}); err != nil || kidOf(t, next) == kidOf(t, tok) {
		t.Errorf("a new key should sign at once: %v", err)
	}
}
