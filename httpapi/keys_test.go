package httpapi_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"authql/auth"
)

// newKeyedServer starts the edge with asymmetric signing keys of alg, as
// the server runs without JWT_SECRET, its issuer the public URL.
func newKeyedServer(t *testing.T, alg string, edit ...func(config)) *server {
	t.Helper()
	s := newServer(t, append([]func(config){func(c config) {
		c.auth.Secret, c.auth.SigningAlgorithm = nil, alg
		c.auth.Issuer, c.http.PublicURL = "https://auth.example.com", "https://auth.example.com"
	}}, edit...)...)
	if err := s.svc.LoadSigningKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokensVerifyWithTheJWKS: a resource server that knows only the
// issuer discovers the metadata, fetches jwks_uri, and verifies an access
// token with go-jose (not our code), for every algorithm of JWT_ALG; the
// set carries no private part.
func TestTokensVerifyWithTheJWKS(t *testing.T) {
	for _, alg := range auth.SigningAlgorithms {
		t.Run(alg, func(t *testing.T) {
			s := newKeyedServer(t, alg)
			s.addUser("alice", alicePassword, "orders:read")
			tok := s.login("alice", alicePassword)

			var meta struct {
				Issuer  string `json:"issuer"`
				JWKSURI string `json:"jwks_uri"`
			}
			_, body := s.do(s.newRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil))
			json.Unmarshal(body, &meta)
			jwksURL, err := url.Parse(meta.JWKSURI)
			if err != nil || meta.Issuer != "https://auth.example.com" {
				t.Fatalf("metadata: %s", body)
			}
			resp, body := s.do(s.newRequest(http.MethodGet, jwksURL.Path, nil))
			if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
				t.Errorf("JWKS Content-Type = %q", ct)
			}
			for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
				if strings.Contains(string(body), private) {
					t.Errorf("the JWKS holds a private member %s: %s", private, body)
				}
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 1 {
				t.Fatalf("JWKS %s: %v", body, err)
			}
			if k := set.Keys[0]; k.Algorithm != alg || k.Use != "sig" || k.KeyID == "" || !k.IsPublic() || !k.Valid() {
				t.Errorf("JWK %+v", k)
			}

			signed, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			hdr := signed.Signatures[0].Header
			keys := set.Key(hdr.KeyID)
			if len(keys) != 1 || hdr.ExtraHeaders["typ"] != "at+jwt" {
				t.Fatalf("kid %q, typ %v: no key or wrong type", hdr.KeyID, hdr.ExtraHeaders["typ"])
			}
			payload, err := signed.Verify(keys[0].Key)
			if err != nil {
				t.Fatalf("go-jose refuses the token: %v", err)
			}
			var claims struct {
				Iss   string `json:"iss"`
				Sub   string `json:"sub"`
				Exp   int64  `json:"exp"`
				Scope string `json:"scope"`
			}
			json.Unmarshal(payload, &claims)
			if claims.Iss != meta.Issuer || claims.Sub == "" || claims.Scope != "orders:read" ||
				claims.Exp != s.clock.Now().Add(15*time.Minute).Unix() {
				t.Errorf("claims %+v; want iss %s", claims, meta.Issuer)
			}
			wantUser(t, s, tok.AccessToken, "alice") // and authql itself takes it

			// The private key never reaches the log.
			stored, err := s.db.SigningKeys(context.Background())
			if err != nil || len(stored) != 1 {
				t.Fatal(err)
			}
			logs := s.logs.String()
			for _, enc := range []string{base64.StdEncoding.EncodeToString(stored[0].Private),
				base64.RawURLEncoding.EncodeToString(stored[0].Private), hex.EncodeToString(stored[0].Private)} {
				if strings.Contains(logs, enc[len(enc)-24:]) {
					t.Error("the log shows the private key")
				}
			}
		})
	}
}

// TestAsymmetricBearerAttacks sends the attacks on asymmetric keys: each
// token is refused with 401 invalid_token.
func TestAsymmetricBearerAttacks(t *testing.T) {
	s := newKeyedServer(t, auth.AlgES256)
	s.addUser("alice", alicePassword)
	good := s.login("alice", alicePassword).AccessToken
	claims := claimsOf(t, good)
	var header map[string]any
	b, _ := jwt.NewParser().DecodeSegment(strings.Split(good, ".")[0])
	json.Unmarshal(b, &header)
	kid, _ := header["kid"].(string)

	pub := s.svc.PublicKeys()[0].Key
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	other, err := auth.GenerateSigningKey(auth.AlgES256, s.clock.Now(), s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := x509.ParsePKCS8PrivateKey(other.Private)
	stored, err := s.db.SigningKeys(context.Background())
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored keys: %d %v", len(stored), err)
	}
	ourKey, _ := x509.ParsePKCS8PrivateKey(stored[0].Private)

	withHeader := func(method jwt.SigningMethod, key any, hdr map[string]any) string {
		t.Helper()
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["typ"] = "at+jwt"
		for k, v := range hdr {
			tok.Header[k] = v
		}
		out, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	parts := strings.Split(good, ".")
	for name, token := range map[string]string{
		"alg none": withHeader(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}),
		"HS256 with the public key (PEM) as secret": withHeader(jwt.SigningMethodHS256, pemKey, map[string]any{"kid": kid}),
		"HS256 with the public key (DER) as secret": withHeader(jwt.SigningMethodHS256, der, map[string]any{"kid": kid}),
		"HS256 without kid, no legacy key":          withHeader(jwt.SigningMethodHS256, []byte(strings.Repeat("k", 32)), nil),
		"another key under our kid":                 withHeader(jwt.SigningMethodES256, otherKey, map[string]any{"kid": kid}),
		"an unknown kid":                            withHeader(jwt.SigningMethodES256, otherKey, map[string]any{"kid": other.ID}),
		"no kid":                                    withHeader(jwt.SigningMethodES256, otherKey, nil),
		// Signed with our own key: only the header itself is wrong.
		"a jku header":       withHeader(jwt.SigningMethodES256, ourKey, map[string]any{"kid": kid, "jku": "https://evil.example/jwks.json"}),
		"a jwk header":       withHeader(jwt.SigningMethodES256, ourKey, map[string]any{"kid": kid, "jwk": map[string]any{"kty": "EC"}}),
		"an x5u header":      withHeader(jwt.SigningMethodES256, ourKey, map[string]any{"kid": kid, "x5u": "https://evil.example/cert.pem"}),
		"a tampered payload": parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2],
	} {
		resp, a := s.query("Bearer " + token)
		if resp.StatusCode != http.StatusUnauthorized || a.Identity != nil {
			t.Errorf("%s: %d %+v; want 401", name, resp.StatusCode, a)
		}
	}
	wantUser(t, s, good, "alice")
}

// TestUpgradeFromStoredHS256 is the upgrade of an installation whose
// database holds the HS256 key an earlier version generated: its access
// tokens (no kid) verify until they would have expired, and not after;
// new tokens are signed with the new asymmetric key.
func TestUpgradeFromStoredHS256(t *testing.T) {
	legacy := []byte("the HS256 key an earlier version stored")
	s := newKeyedServer(t, auth.AlgES256, func(c config) { c.auth.LegacySecret = legacy })
	u := s.addUser("alice", alicePassword)
	fresh := s.login("alice", alicePassword)
	old := claimsOf(t, fresh.AccessToken) // a live session, signed the old way
	delete(old, "kid")
	oldToken := signed(t, jwt.SigningMethodHS256, "at+jwt", old, legacy)
	wantUser(t, s, oldToken, "alice")
	if _, err := s.svc.Authenticate(context.Background(), oldToken, auth.Origin{}); err != nil {
		t.Errorf("an earlier version's token: %v", err)
	}
	var hdr map[string]any
	b, _ := jwt.NewParser().DecodeSegment(strings.Split(fresh.AccessToken, ".")[0])
	if json.Unmarshal(b, &hdr); hdr["alg"] != "ES256" || hdr["kid"] == nil || claimsOf(t, fresh.AccessToken)["sub"] != u.ID {
		t.Fatalf("a new token's header %v: want ES256 with a kid", hdr)
	}
	// Past the access token lifetime after the upgrade, the old key is
	// gone; a token signed with it now, however fresh, is refused.
	s.clock.Advance(16 * time.Minute)
	renewed := s.login("alice", alicePassword)
	old = claimsOf(t, renewed.AccessToken)
	if st := s.queryStatus(signed(t, jwt.SigningMethodHS256, "at+jwt", old, legacy)); st != http.StatusUnauthorized {
		t.Errorf("the legacy key after its window: %d; want 401", st)
	}
	wantUser(t, s, renewed.AccessToken, "alice")
}
