package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The grant types the token endpoint serves.
const (
	GrantPassword     = "password"      // RFC 6749 section 4.3
	GrantRefreshToken = "refresh_token" // RFC 6749 section 6
)

// GrantTypes are every grant type a client may be allowed.
var GrantTypes = []string{GrantPassword, GrantRefreshToken}

// Client is an OAuth2 client (RFC 6749 section 2). A registered client is
// confidential when it has a secret and public otherwise. A request that
// names an unregistered client_id without a secret gets an unregistered
// public client, allowed every grant and scope, whose id the tokens carry.
type Client struct {
	ID           string
	Confidential bool
	// GrantTypes are the grant types the client may use.
	GrantTypes []string
	// Scopes, when not empty, bound the scopes of the client's tokens.
	Scopes     []string
	CreatedAt  time.Time
	Registered bool
}

// clientID is the id of c, "" for the first-party client (nil).
func clientID(c *Client) string {
	if c == nil {
		return ""
	}
	return c.ID
}

// allows reports whether c may use grant; the first-party client may use
// every grant.
func (c *Client) allows(grant string) error {
	if c != nil && !slices.Contains(c.GrantTypes, grant) {
		return Errorf(CodeUnauthorizedClient, "client %s may not use the %s grant", c.ID, grant)
	}
	return nil
}

// narrow returns the scopes of have that c may receive.
func (c *Client) narrow(have []string) []string {
	if c == nil || len(c.Scopes) == 0 {
		return have
	}
	return intersectScopes(have, c.Scopes)
}

// Limits of client registration.
const (
	maxClientIDLen     = 128
	MinClientSecretLen = 8
)

// NewClient describes a client to register. An empty Secret registers a
// public client.
type NewClient struct {
	ID         string
	Secret     string
	GrantTypes []string // nil: every grant type
	Scopes     []string // nil: any scope of the user
}

// RegisterClient registers a client, storing only a bcrypt hash of its
// secret. An id that is not 1 to 128 VSCHARs (RFC 6749 Appendix A.1) or is
// taken, a secret that is not 8 to 72 bytes of VSCHAR, an unknown grant
// type and a malformed scope are CodeInvalidRequest errors naming the field.
func (s *Service) RegisterClient(ctx context.Context, nc NewClient) (*Client, error) {
	if !validClientID(nc.ID) {
		return nil, fieldError("id", "client id must be 1 to %d printable ASCII characters", maxClientIDLen)
	}
	var hash []byte
	if nc.Secret != "" {
		if len(nc.Secret) < MinClientSecretLen || len(nc.Secret) > MaxPasswordBytes || !isVSChars(nc.Secret) {
			return nil, fieldError("secret", "client secret must be %d to %d printable ASCII characters", MinClientSecretLen, MaxPasswordBytes)
		}
		var err error
		if hash, err = s.passwords.hash(ctx, nc.Secret); err != nil {
			return nil, fmt.Errorf("hash client secret: %w", err)
		}
	}
	grants := nc.GrantTypes
	if len(grants) == 0 {
		grants = GrantTypes
	}
	for _, g := range grants {
		if !slices.Contains(GrantTypes, g) {
			return nil, fieldError("grants", "grant type %q is not one of %s", g, FormatScope(GrantTypes))
		}
	}
	if err := validateScopes(nc.Scopes); err != nil {
		return nil, err
	}
	c := &Client{
		ID:           nc.ID,
		Confidential: hash != nil,
		GrantTypes:   slices.Compact(slices.Clone(grants)),
		Scopes:       append([]string{}, nc.Scopes...),
		CreatedAt:    s.now(),
		Registered:   true,
	}
	err := s.store.CreateClient(ctx, c, hash)
	if errors.Is(err, ErrClientExists) {
		return nil, fieldError("id", "client %q exists", nc.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	s.auditEvent(ctx, Operator, "client registered", "client_registered", "client_id", c.ID)
	return c, nil
}

// AuthenticateClient checks the client part of a token or revocation request
// (RFC 6749 section 2.3.1) and returns the client, or nil for the
// first-party client (no id, no secret). A registered confidential client
// must present its secret; a public one must present none; an unregistered
// id may come without a secret only. An id that breaks the client_id rules
// (validClientID) is refused before any lookup. Every other failure is the
// same CodeInvalidClient error after one bcrypt comparison, whether or not
// the client exists. Failed authentications are counted per client id and
// per client address; past ClientAuthLimit or LoginAddrLimit every
// authentication that checks a secret is CodeRateLimited.
func (s *Service) AuthenticateClient(ctx context.Context, id, secret string, origin Origin) (*Client, error) {
	if id == "" && secret == "" {
		return nil, nil
	}
	if !validClientID(id) {
		s.securityEvent(ctx, origin.ClientAddr, "client authentication failed", "client_auth_failed", "reason", "malformed client_id")
		return nil, Errorf(CodeInvalidClient, "client_id must be 1 to %d printable ASCII characters", maxClientIDLen)
	}
	c, hash, err := s.store.ClientByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		c, err = &Client{ID: id, GrantTypes: GrantTypes}, nil
	}
	if err != nil {
		return nil, err
	}
	if secret == "" && !c.Confidential {
		return c, nil
	}
	if c.Registered && secret != "" && s.guards.secrets.has(id, secret, hash, s.now()) {
		return c, nil
	}
	// A typed id is logged only when it names a registered client: an
	// unknown one may be a secret typed into the wrong field.
	loggedID := "(unregistered)"
	if c.Registered {
		loggedID = id
	}
	attempt, err := s.startClientAuth(ctx, id, loggedID, origin.ClientAddr)
	if err != nil {
		return nil, err
	}
	ok, _, err := s.passwords.check(ctx, hash, secret)
	if err != nil {
		attempt.aborted()
		return nil, err
	}
	if !ok || secret == "" {
		attempt.failed()
		s.securityEvent(ctx, origin.ClientAddr, "client authentication failed", "client_auth_failed", "client_id", loggedID)
		return nil, Errorf(CodeInvalidClient, "client authentication failed")
	}
	attempt.succeeded()
	if err := s.guards.store.AddKnownAddress(context.WithoutCancel(ctx), keyOf(id), keyOf(origin.ClientAddr), attempt.at); err != nil {
		s.throttleFault(ctx, "recording a client's known address failed", throttleClientAuth, err)
	}
	s.guards.secrets.add(id, secret, hash, attempt.at)
	return c, nil
}

// Clients returns every registered client.
func (s *Service) Clients(ctx context.Context) ([]*Client, error) {
	return s.store.Clients(ctx)
}

// RemoveClient deletes client id and ends the sessions opened through it.
// An unknown id is CodeInvalidRequest.
func (s *Service) RemoveClient(ctx context.Context, id string) error {
	err := s.store.DeleteClient(ctx, id, s.now())
	if errors.Is(err, ErrNotFound) {
		return fieldError("id", "no client %q", id)
	}
	if err == nil {
		s.auditEvent(ctx, Operator, "client removed; its sessions ended", "client_removed", "client_id", id)
	}
	return err
}
