package httpapi

import "net/http"

// jwksMaxAge is how long verifiers may cache the key set: far shorter than
// the lead time with which a new signing key is published before it signs.
const jwksMaxAge = "max-age=300"

// jwksHandler serves GET /.well-known/jwks.json, the public keys that
// access tokens may be signed with (RFC 7517 JWK Set), as
// application/jwk-set+json. authql signs with an HS256 key today, stored in
// the database or given by JWT_SECRET, and a symmetric key is never
// published: the set is empty until asymmetric keys sign.
func jwksHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, "+jwksMaxAge)
		writeJSON(w, http.StatusOK, "application/jwk-set+json", struct {
			Keys []struct{} `json:"keys"`
		}{Keys: []struct{}{}})
	})
}
