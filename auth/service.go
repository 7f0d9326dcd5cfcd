package auth

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Config holds what the Service needs to know. Zero durations are invalid;
// NewService checks.
type Config struct {
	// Secret, when set, is the HS256 key (JWT_SECRET), at least
	// MinSecretLen bytes.
	Secret []byte
	// SigningAlgorithm, without Secret, is the algorithm of the
	// asymmetric signing keys (JWT_ALG), which LoadSigningKeys reads from
	// the store, making the first one. With neither, the Service only
	// manages users and clients (the CLI), and its token methods fail with
	// CodeInternal.
	SigningAlgorithm string
	// KeyRotationInterval is the age at which MaintainSigningKeys replaces
	// the signing key; 0 turns automatic rotation off. KeyLeadTime is how
	// long a new key is published before it signs, so that verifiers'
	// cached key sets have it; 0 means DefaultKeyLeadTime.
	KeyRotationInterval, KeyLeadTime time.Duration
	// Sealer, when set (KEY_ENCRYPTION_KEY), encrypts the private signing
	// keys this Service stores and opens those it reads.
	Sealer *Sealer
	// LegacySecret is the HS256 key an earlier version generated and
	// stored: with asymmetric keys, it verifies that version's tokens (no
	// kid) for AccessTokenTTL after the first asymmetric key was made.
	LegacySecret []byte
	// RefreshSecret derives rotated refresh tokens from their parents. It
	// must not be Secret, and is needed when tokens are.
	RefreshSecret []byte
	// Issuer is the iss claim of every access token, checked on each one.
	Issuer string
	// Audience, when set, is the aud claim, checked on each access token.
	Audience string
	// AccessTokenTTL is the lifetime of an access token.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is how long a session lives without a refresh.
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long after a rotation a replayed refresh
	// token gets the same new token instead of ending the session.
	RefreshReuseGrace time.Duration
	// BcryptCost is the cost of new password hashes; older hashes at a
	// lower cost are upgraded at the next login.
	BcryptCost int
	// BcryptPool runs the bcrypt work, bounded; a request it has no room
	// for gets CodeUnavailable. Nil runs the work on the caller's goroutine
	// (the CLI, tests).
	BcryptPool Runner
	// LoginUserLimit bounds failed logins per username from addresses
	// that are not known for it; LoginPairLimit per username and client
	// address; LoginAddrLimit failed logins and client authentications per
	// client address; ClientAuthLimit failed client authentications per
	// client id; SignupAddrLimit signups per client address; RefreshLimit
	// rotations per session. Zero values mean the defaults.
	LoginUserLimit, LoginPairLimit, LoginAddrLimit, ClientAuthLimit, SignupAddrLimit, RefreshLimit Limit
	// Throttles keeps the buckets of those limits; nil means
	// NewMemoryThrottles, right for a single instance. Instances sharing a
	// database share a store, so that each limit holds across them all.
	Throttles ThrottleStore
	// SignupClosed turns the Signup method off.
	SignupClosed bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives security events (never secrets); nil discards them.
	Logger *slog.Logger
	// Metrics is told how each login and refresh ended; nil means no
	// metrics.
	Metrics Observer
}

// Observer is told how each Login and Refresh ended, once it has (the
// metrics package counts them). Its methods must be cheap and safe for
// concurrent use: they run on the request's goroutine.
type Observer interface {
	ObserveLogin(Outcome)
	ObserveRefresh(Outcome)
}

// Outcome is how a Login or a Refresh ended, in a few classes that an
// operator watches separately.
type Outcome string

// The outcomes. Each error code maps to one of them (see outcomeOf).
const (
	// OutcomeSuccess: tokens were issued.
	OutcomeSuccess Outcome = "success"
	// OutcomeInvalidGrant: CodeInvalidGrant. For a login, a wrong username
	// or password or a disabled user; for a refresh, an unknown, expired
	// or revoked refresh token (but see OutcomeReuseDetected).
	OutcomeInvalidGrant Outcome = "invalid_grant"
	// OutcomeThrottled: CodeRateLimited, refused by brute-force
	// protection before any password check.
	OutcomeThrottled Outcome = "throttled"
	// OutcomeReuseDetected: a refresh token already rotated came back
	// after RefreshReuseGrace; the session was revoked (refresh only).
	OutcomeReuseDetected Outcome = "reuse_detected"
	// OutcomeUnavailable: CodeUnavailable, no bcrypt worker free in time
	// or the database too busy (503 with Retry-After).
	OutcomeUnavailable Outcome = "unavailable"
	// OutcomeRejected: the request itself was refused: CodeInvalidScope,
	// CodeUnauthorizedClient, CodeInvalidRequest.
	OutcomeRejected Outcome = "rejected"
	// OutcomeCanceled: the request's context ended first (the client went
	// away).
	OutcomeCanceled Outcome = "canceled"
	// OutcomeError: anything else, a fault reported as CodeInternal.
	OutcomeError Outcome = "error"
)

// LoginOutcomes and RefreshOutcomes are every Outcome that Login and
// Refresh report: a refresh is never throttled, and only a refresh
// detects reuse.
var (
	LoginOutcomes = []Outcome{OutcomeSuccess, OutcomeInvalidGrant, OutcomeThrottled,
		OutcomeUnavailable, OutcomeRejected, OutcomeCanceled, OutcomeError}
	RefreshOutcomes = []Outcome{OutcomeSuccess, OutcomeInvalidGrant, OutcomeReuseDetected,
		OutcomeUnavailable, OutcomeRejected, OutcomeCanceled, OutcomeError}
)

// outcomeOf classifies the error a Login or Refresh returned.
func outcomeOf(err error) Outcome {
	if err == nil {
		return OutcomeSuccess
	}
	switch ErrorCode(err) {
	case CodeInvalidGrant:
		return OutcomeInvalidGrant
	case CodeRateLimited:
		return OutcomeThrottled
	case CodeUnavailable:
		return OutcomeUnavailable
	case CodeInternal:
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return OutcomeCanceled
		}
		return OutcomeError
	}
	return OutcomeRejected
}

// Service is authql's core: it turns credentials into sessions and tokens and
// tokens back into users. Both transports, POST /token and the GraphQL
// mutations, call the same methods. Errors it returns are *Error values,
// or faults that the edges report as CodeInternal.
type Service struct {
	store     Store
	passwords *passwords
	// access and refresh are nil in a Service without keys.
	access  *accessTokens
	refresh *refreshTokens
	guards  guards
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
}

// Defaults for the zero values of Config.
var (
	DefaultLoginUserLimit  = Limit{N: 10, Per: 15 * time.Minute}
	DefaultLoginPairLimit  = Limit{N: 10, Per: 15 * time.Minute}
	DefaultLoginAddrLimit  = Limit{N: 100, Per: 15 * time.Minute}
	DefaultClientAuthLimit = Limit{N: 20, Per: 15 * time.Minute}
	DefaultSignupAddrLimit = Limit{N: 20, Per: time.Hour}
	DefaultRefreshLimit    = Limit{N: 60, Per: time.Hour}
)

// errNoKeys is the fault of a token method of a Service built without keys.
var errNoKeys = errors.New("this service has no token keys: it manages users and clients only")

// NewService returns a Service over store configured by cfg.
func NewService(store Store, cfg Config) (*Service, error) {
	if len(cfg.Secret) > 0 && len(cfg.RefreshSecret) == 0 {
		return nil, errors.New("a service that signs with a JWT secret needs a refresh token secret")
	}
	var ring *keyring
	switch {
	case len(cfg.Secret) > 0:
		ring = hmacKeyring(cfg.Secret)
	case cfg.SigningAlgorithm != "":
		method, err := methodOf(cfg.SigningAlgorithm)
		if err != nil {
			return nil, err
		}
		ring = &keyring{method: method} // LoadSigningKeys fills it
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("the JWT secret is %d bytes; it must be at least %d", len(cfg.Secret), MinSecretLen)
	}
	if len(cfg.RefreshSecret) > 0 && len(cfg.RefreshSecret) < MinSecretLen {
		return nil, fmt.Errorf("the refresh token secret is %d bytes; it must be at least %d", len(cfg.RefreshSecret), MinSecretLen)
	}
	if len(cfg.Secret) > 0 && hmac.Equal(cfg.Secret, cfg.RefreshSecret) {
		return nil, errors.New("the refresh token secret must not be the JWT secret")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("the JWT issuer must not be empty")
	}
	if cfg.AccessTokenTTL <= 0 || cfg.RefreshTokenTTL <= 0 || cfg.RefreshReuseGrace < 0 {
		return nil, errors.New("token lifetimes must be positive")
	}
	for _, l := range []struct {
		limit *Limit
		def   Limit
	}{
		{&cfg.LoginUserLimit, DefaultLoginUserLimit},
		{&cfg.LoginPairLimit, DefaultLoginPairLimit},
		{&cfg.LoginAddrLimit, DefaultLoginAddrLimit},
		{&cfg.ClientAuthLimit, DefaultClientAuthLimit},
		{&cfg.SignupAddrLimit, DefaultSignupAddrLimit},
		{&cfg.RefreshLimit, DefaultRefreshLimit},
	} {
		if *l.limit == (Limit{}) {
			*l.limit = l.def
		}
	}
	pw, err := newPasswords(cfg.BcryptCost, cfg.BcryptPool)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	throttles := cfg.Throttles
	if throttles == nil {
		throttles = NewMemoryThrottles()
	}
	s := &Service{
		store:     store,
		passwords: pw,
		guards: guards{
			store:         throttles,
			user:          throttle{throttleLoginUser, cfg.LoginUserLimit},
			pair:          throttle{throttleLoginPair, cfg.LoginPairLimit},
			addr:          throttle{throttleLoginAddr, cfg.LoginAddrLimit},
			client:        throttle{throttleClientAuth, cfg.ClientAuthLimit},
			secrets:       newVerifiedSecrets(),
			signup:        throttle{throttleSignup, cfg.SignupAddrLimit},
			refresh:       throttle{throttleRefresh, cfg.RefreshLimit},
			passwordCheck: throttle{throttlePasswordCheck, cfg.LoginUserLimit},
		},
		cfg: cfg,
		now: now,
		log: log,
	}
	if ring != nil {
		s.access = newAccessTokens(ring, cfg.Issuer, cfg.Audience, cfg.AccessTokenTTL, now)
	}
	if len(cfg.RefreshSecret) > 0 {
		s.refresh = newRefreshTokens(cfg.RefreshSecret)
	}
	return s, nil
}

// LoadSigningKeys reads the asymmetric signing keys from the store into
// the keys that sign and verify access tokens, first making and storing a
// key of the configured algorithm, active at once, when none is active: at
// first start, on upgrade from HS256, or when JWT_ALG changed. It does
// nothing for an HS256 service.
func (s *Service) LoadSigningKeys(ctx context.Context) error {
	return s.loadSigningKeys(ctx, true)
}

// loadSigningKeys is LoadSigningKeys; without generate (the CLI, which
// makes a key only when told to) it makes no key.
func (s *Service) loadSigningKeys(ctx context.Context, generate bool) error {
	if s.access == nil || s.cfg.SigningAlgorithm == "" || len(s.cfg.Secret) > 0 {
		return nil
	}
	alg, now := s.cfg.SigningAlgorithm, s.now()
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("read the signing keys: %w", err)
	}
	ring, err := buildKeyring(alg, keys, now, s.cfg.AccessTokenTTL, s.cfg.Sealer)
	if err != nil {
		return err
	}
	if ring.signing == nil && generate {
		k, err := s.newSigningKey(alg, now, now)
		if err != nil {
			return err
		}
		added, err := s.store.AddSigningKey(ctx, k, now)
		if err != nil {
			return fmt.Errorf("store the first signing key: %w", err)
		}
		// Not added: another instance stored one first, which all use.
		if added {
			s.auditEvent(ctx, Operator, "signing key made", "signing_key_created", "kid", k.ID, "alg", alg)
		}
		if keys, err = s.store.SigningKeys(ctx); err != nil {
			return fmt.Errorf("read the signing keys: %w", err)
		}
		if ring, err = buildKeyring(alg, keys, now, s.cfg.AccessTokenTTL, s.cfg.Sealer); err != nil {
			return err
		}
	}
	if len(s.cfg.LegacySecret) > 0 {
		first := now
		for _, k := range keys {
			if k.CreatedAt.Before(first) {
				first = k.CreatedAt
			}
		}
		ring.legacy = &ringKey{signKey: s.cfg.LegacySecret, verifyKey: s.cfg.LegacySecret}
		ring.legacyUntil = first.Add(s.cfg.AccessTokenTTL)
	}
	s.access.ring.Store(ring)
	return nil
}

// newSigningKey generates a key, sealed when the Service has a Sealer.
func (s *Service) newSigningKey(alg string, now, activeAt time.Time) (*SigningKey, error) {
	k, err := GenerateSigningKey(alg, now, activeAt)
	if err == nil && s.cfg.Sealer != nil {
		k.Private = s.cfg.Sealer.Seal("signing key "+k.ID, k.Private)
	}
	return k, err
}

// DefaultKeyLeadTime is how long a new signing key is published before it
// signs: longer than verifiers cache the key set.
const DefaultKeyLeadTime = time.Hour

// errHS256Keys refuses key management to a service that signs with
// JWT_SECRET.
var errHS256Keys = Errorf(CodeInvalidRequest, "the server signs with JWT_SECRET (HS256): there are no signing keys to manage")

// SigningKeys returns the state of every stored signing key at now.
func (s *Service) SigningKeys(ctx context.Context) ([]KeyInfo, error) {
	if s.cfg.SigningAlgorithm == "" {
		return nil, errHS256Keys
	}
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	return keyStates(s.cfg.SigningAlgorithm, keys, s.now(), s.cfg.AccessTokenTTL), nil
}

// RotateSigningKey starts a rotation: a new key of the configured
// algorithm, published now and signing after KeyLeadTime, so that nobody's
// token stops verifying. It reports false, and changes nothing, when a
// key is already waiting to sign (two instances rotating at once leave one
// pending key). It returns the key's state.
func (s *Service) RotateSigningKey(ctx context.Context) (*KeyInfo, bool, error) {
	if s.cfg.SigningAlgorithm == "" {
		return nil, false, errHS256Keys
	}
	lead := s.cfg.KeyLeadTime
	if lead <= 0 {
		lead = DefaultKeyLeadTime
	}
	now := s.now()
	k, err := s.newSigningKey(s.cfg.SigningAlgorithm, now, now.Add(lead))
	if err != nil {
		return nil, false, err
	}
	added, err := s.store.AddSigningKey(ctx, k, now)
	if err != nil || !added {
		return nil, false, err
	}
	s.auditEvent(ctx, Operator, "signing key rotation started", "signing_key_created", "kid", k.ID, "active_at", k.ActiveAt.UTC())
	info := &KeyInfo{ID: k.ID, Algorithm: k.Algorithm, State: KeyPending, CreatedAt: k.CreatedAt, ActiveAt: k.ActiveAt}
	return info, true, s.loadSigningKeys(ctx, s.refresh != nil)
}

// RevokeSigningKey revokes key kid at once: it neither signs nor verifies
// any more, in this process at once and in others when they next read the
// keys. Revoking the active key makes a new one active at once. An
// unknown kid is CodeInvalidRequest.
func (s *Service) RevokeSigningKey(ctx context.Context, kid string) error {
	if s.cfg.SigningAlgorithm == "" {
		return errHS256Keys
	}
	err := s.store.RevokeSigningKey(ctx, kid, s.now())
	if errors.Is(err, ErrNotFound) {
		return fieldError("kid", "no signing key %q", kid)
	}
	if err != nil {
		return err
	}
	s.auditEvent(ctx, Operator, "signing key revoked", "signing_key_revoked", "kid", kid)
	return s.loadSigningKeys(ctx, s.refresh != nil)
}

// MaintainSigningKeys reads the keys again (pending keys become active,
// retiring ones retire, other instances' and the CLI's changes arrive) and
// starts a rotation once the signing key is KeyRotationInterval old.
func (s *Service) MaintainSigningKeys(ctx context.Context) error {
	if err := s.LoadSigningKeys(ctx); err != nil || s.cfg.KeyRotationInterval <= 0 {
		return err
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	for _, k := range keys {
		if k.State == KeyPending {
			return nil // a rotation is under way
		}
	}
	for _, k := range keys {
		if k.State == KeyActive && !now.Before(k.ActiveAt.Add(s.cfg.KeyRotationInterval)) {
			_, _, err := s.RotateSigningKey(ctx)
			return err
		}
	}
	return nil
}

// PublicKeys returns the public keys that access tokens may be signed
// with, for a JWKS: none for HS256, whose key is never published.
func (s *Service) PublicKeys() []PublicKey {
	if s.access == nil {
		return nil
	}
	return slices.Clone(s.access.ring.Load().publish)
}

// LoadPasswordCosts reads the bcrypt costs of the stored password hashes,
// so that from now on every password check costs at least as much as one
// against the most expensive of them (see passwords).
func (s *Service) LoadPasswordCosts(ctx context.Context) error {
	cost, err := s.store.MaxPasswordCost(ctx)
	if err != nil {
		return fmt.Errorf("read the stored password costs: %w", err)
	}
	s.passwords.raiseFloor(cost)
	return nil
}

// SupportedScopes returns every scope in use: those guarding administration
// and those granted to a user or allowed to a client (RFC 8414
// scopes_supported).
func (s *Service) SupportedScopes(ctx context.Context) ([]string, error) {
	scopes, err := s.store.Scopes(ctx)
	if err != nil {
		return nil, err
	}
	scopes = append(scopes, ScopeUsersRead, ScopeUsersWrite)
	slices.Sort(scopes)
	return slices.Compact(scopes), nil
}
