package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"authql/auth"
)

// jwksMaxAge is how long verifiers may cache the key set: far shorter than
// the lead time with which a new signing key is published before it signs.
const jwksMaxAge = "max-age=300"

// jwksHandler serves GET /.well-known/jwks.json, the public keys that
// access tokens may be signed with (RFC 7517 JWK Set), as
// application/jwk-set+json, encoded by go-jose: kty, kid, alg, use "sig"
// and the curve or modulus the key type needs, never a private part. With
// JWT_SECRET the set is empty: a symmetric key is never published.
func jwksHandler(svc *auth.Service, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
		for _, k := range svc.PublicKeys() {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
		}
		body, err := json.Marshal(set)
		if err != nil {
			writeOAuthError(w, r, logger, err)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, "+jwksMaxAge)
		w.Write(append(body, '\n'))
	})
}
