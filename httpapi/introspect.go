package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"authql/auth"
)

// introspection is the body of an introspection response (RFC 7662
// section 2.2). An inactive token's is exactly {"active":false}.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
	Sid       string `json:"sid,omitempty"`
}

// introspectHandler is the introspection endpoint, POST /introspect (RFC
// 7662): a form with token and an optional token_type_hint, from a
// registered confidential client authenticated as at /token (required:
// 401 invalid_client otherwise, and throttled alike). It answers whether
// the token is live right now, with the cache headers of /token.
func introspectHandler(svc *auth.Service, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := introspect(w, r, svc)
		if err != nil {
			writeOAuthError(w, r, logger, err)
			return
		}
		body := introspection{Active: in.Active}
		if in.Active {
			body = introspection{
				Active:    true,
				Scope:     auth.FormatScope(in.Scopes),
				ClientID:  in.ClientID,
				Username:  in.Username,
				TokenType: in.TokenType,
				Exp:       unixOrZero(in.ExpiresAt),
				Iat:       unixOrZero(in.IssuedAt),
				Sub:       in.Subject,
				Aud:       in.Audience,
				Iss:       in.Issuer,
				Jti:       in.TokenID,
				Sid:       in.SessionID,
			}
		}
		noStore(w.Header())
		writeJSON(w, http.StatusOK, "application/json", body)
	})
}

// unixOrZero is t in Unix seconds, or 0 (left out of the answer) for the
// zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func introspect(w http.ResponseWriter, r *http.Request, svc *auth.Service) (*auth.Introspection, error) {
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	client, err := authenticateClient(r, form, svc)
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, auth.Errorf(auth.CodeInvalidClient, "introspection needs client authentication")
	}
	return svc.Introspect(r.Context(), client, form["token"], form["token_type_hint"])
}
