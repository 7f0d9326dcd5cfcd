package httpapi

import (
	"log/slog"
	"net/http"
	"strings"

	"authql/auth"
)

// metadata is the authorization server metadata document (RFC 8414
// section 2).
type metadata struct {
	Issuer                        string   `json:"issuer"`
	TokenEndpoint                 string   `json:"token_endpoint"`
	RevocationEndpoint            string   `json:"revocation_endpoint"`
	IntrospectionEndpoint         string   `json:"introspection_endpoint"`
	JWKSURI                       string   `json:"jwks_uri"`
	GrantTypesSupported           []string `json:"grant_types_supported"`
	TokenEndpointAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionAuthMethods      []string `json:"introspection_endpoint_auth_methods_supported"`
	ScopesSupported               []string `json:"scopes_supported"`
	ResponseTypesSupported        []string `json:"response_types_supported"`
}

// clientAuthMethods are the client authentication methods of /token and
// /revoke (RFC 7591 section 2 names); introspection needs a secret.
var (
	clientAuthMethods        = []string{"client_secret_basic", "client_secret_post", "none"}
	introspectionAuthMethods = []string{"client_secret_basic", "client_secret_post"}
)

// metadataHandler serves GET /.well-known/oauth-authorization-server. URLs
// are absolute: under publicURL when set, else under the scheme and host
// the request came to.
//
// With publicURL set the document ignores the request (its Host header
// included), is the same for everyone, and may be cached by shared caches.
// Without it the document repeats the Host header, which any client writes:
// a shared cache keyed by URL alone would serve one client's
// "Host: evil.example" document, with token_endpoint on evil.example, to
// everyone else. So it is then private to the client that asked, and says
// that it varies by Host, for any cache that keys it by path alone.
func metadataHandler(svc *auth.Service, publicURL string, logger *slog.Logger) http.Handler {
	publicURL = strings.TrimSuffix(publicURL, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scopes, err := svc.SupportedScopes(r.Context())
		if err != nil {
			writeOAuthError(w, r, logger, err)
			return
		}
		base := publicURL
		if base == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			base = scheme + "://" + r.Host
			w.Header().Set("Cache-Control", "private, max-age=60")
			w.Header().Add("Vary", "Host") // beside CORS's Vary: Origin
		} else {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		writeJSON(w, http.StatusOK, "application/json", metadata{
			Issuer:                        base,
			TokenEndpoint:                 base + "/token",
			RevocationEndpoint:            base + "/revoke",
			IntrospectionEndpoint:         base + "/introspect",
			JWKSURI:                       base + "/.well-known/jwks.json",
			GrantTypesSupported:           auth.GrantTypes,
			TokenEndpointAuthMethods:      clientAuthMethods,
			RevocationEndpointAuthMethods: clientAuthMethods,
			IntrospectionAuthMethods:      introspectionAuthMethods,
			ScopesSupported:               scopes,
			ResponseTypesSupported:        []string{},
		})
	})
}
