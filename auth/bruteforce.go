package auth

import (
	"context"
	"log/slog"
	"math"
	"time"
)

// KnownAddressWindow is how long a successful login from an address lets
// the user log in from it while failures from elsewhere throttle the
// username.
const KnownAddressWindow = 30 * 24 * time.Hour

// The names of the guards' buckets: stable, since a shared ThrottleStore
// keeps them. Logins and client authentications share the address's.
const (
	throttleLoginUser     = "login_user"
	throttleLoginPair     = "login_pair"
	throttleLoginAddr     = "login_addr"
	throttleClientAuth    = "client_auth"
	throttleSignup        = "signup"
	throttleRefresh       = "refresh"
	throttlePasswordCheck = "password_check"
)

// guards are the throttles of brute-force protection (RFC 6749 section
// 4.3.2; OWASP's "slow down online guessing"). Each counts events in
// buckets of store keyed by a fixed-size hash of what it counts.
type guards struct {
	// store keeps the buckets, and the addresses clients authenticated
	// from.
	store ThrottleStore
	// user counts failed logins per username, for the addresses that are
	// not known for it: an attacker guessing one password from many
	// addresses.
	user throttle
	// pair counts failed logins per username and address: an attacker at
	// an address the user logs in from (a shared NAT).
	pair throttle
	// addr counts failed logins and failed client authentications per
	// client address: one address guessing many usernames or secrets.
	addr throttle
	// client counts failed client authentications per client id, for the
	// addresses that are not known for it: those of its successful
	// authentications, which pass a spent per-id bucket, so that guesses
	// from elsewhere cannot lock a confidential client out.
	client throttle
	// secrets are the client secrets bcrypt accepted in the last minutes.
	secrets *verifiedSecrets
	// signup counts every signup per client address: "username is taken"
	// tells whether an account exists.
	signup throttle
	// refresh counts the rotations of each session's refresh token, whose
	// hashes theft detection keeps.
	refresh throttle
	// passwordCheck counts wrong current passwords in changePassword per
	// user, apart from logins: a stolen access token cannot guess faster,
	// and failures at the login door cannot stop the owner.
	passwordCheck throttle
}

// loginAttempt is a login counted against its buckets from before the
// password is checked; pair is the bucket that a success refills.
type loginAttempt struct {
	*attempt
	pair heldBucket
}

// startLogin begins a login attempt for the username whose key is
// usernameKey from the client address addr, or returns a CodeRateLimited
// error, or a fault of the throttle store. It takes an event from the
// address's bucket, then the pair's, then the username's; an address from
// which the user logged in within KnownAddressWindow passes an empty
// username bucket, so that failures from elsewhere never lock the user
// out. A throttled real username and a throttled unknown one get the same
// answer after the same work: one indexed read. A signed-in user
// confirming their password (signedIn) is not counted per username: their
// session already proves who they are, and failures from elsewhere must
// not stop them changing their password.
func (s *Service) startLogin(ctx context.Context, usernameKey, addr string, signedIn bool) (*loginAttempt, error) {
	a := &loginAttempt{attempt: s.newAttempt(ctx, s.now()), pair: s.guards.pair.bucket(usernameKey, addr)}
	wait, err := a.take(s.guards.addr.bucket(addr), a.pair)
	if err == nil && wait == 0 && !signedIn {
		wait, err = a.takeUnlessKnown(s.guards.user.bucket(usernameKey), func() (bool, error) {
			return s.store.KnownLoginAddress(ctx, usernameKey, addr, a.at.Add(-KnownAddressWindow))
		})
	}
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		s.securityEvent(ctx, addr, "login throttled", "login_throttled", "retry_after_s", int(math.Ceil(wait.Seconds())))
		return nil, errThrottled("failed logins", wait)
	}
	return a, nil
}

// startClientAuth begins a client authentication for client id from the
// client address addr, counted per address and per client id, or returns a
// CodeRateLimited error, or a fault of the throttle store. An address from
// which the client authenticated within KnownAddressWindow passes a spent
// per-id bucket. loggedID is how the id may appear in the log (see
// AuthenticateClient).
func (s *Service) startClientAuth(ctx context.Context, id, loggedID, addr string) (*attempt, error) {
	a := s.newAttempt(ctx, s.now())
	wait, err := a.take(s.guards.addr.bucket(addr))
	if err == nil && wait == 0 {
		wait, err = a.takeUnlessKnown(s.guards.client.bucket(id), func() (bool, error) {
			return s.guards.store.KnownAddress(ctx, keyOf(id), keyOf(addr), a.at.Add(-KnownAddressWindow))
		})
	}
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		s.securityEvent(ctx, addr, "client authentication throttled", "client_auth_throttled",
			"client_id", loggedID, "retry_after_s", int(math.Ceil(wait.Seconds())))
		return nil, errThrottled("failed client authentications", wait)
	}
	return a, nil
}

// takeUnlessKnown takes an event for a from b; when b is empty, an
// address known for what b counts (known) passes without one. As with
// take, a has ended when it returns a wait or an error.
func (a *attempt) takeUnlessKnown(b heldBucket, known func() (bool, error)) (time.Duration, error) {
	wait, err := a.tryTake(b)
	if wait > 0 {
		var ok bool
		if ok, err = known(); ok {
			wait = 0
		}
	}
	if wait > 0 || err != nil {
		a.aborted()
	}
	return wait, err
}

// securityEvent logs, at WARN, an event that may be an attack: a failed
// login or client authentication, throttling, a reused refresh token.
// event names it for filtering, and addr is the client address. Callers
// pass no password, token, secret or hash, and no username as typed (a user
// may type a password into the username field). The logger's handler adds
// what ctx knows of the request (its id).
func (s *Service) securityEvent(ctx context.Context, addr, msg, event string, attrs ...any) {
	s.logEvent(ctx, slog.LevelWarn, addr, msg, event, attrs)
}

// auditEvent logs, at INFO, a change to users, clients or credentials made
// by, as securityEvent does.
func (s *Service) auditEvent(ctx context.Context, by *Identity, msg, event string, attrs ...any) {
	s.logEvent(ctx, slog.LevelInfo, by.Origin.ClientAddr, msg, event, append(attrs, "by", by.actor()))
}

func (s *Service) logEvent(ctx context.Context, level slog.Level, addr, msg, event string, attrs []any) {
	s.log.Log(ctx, level, msg, append([]any{"event", event, "client", addr}, attrs...)...)
}

// userAttr names u in a security event, when u is a user.
func userAttr(u *User) []any {
	if u == nil {
		return nil
	}
	return []any{"user_id", u.ID}
}
