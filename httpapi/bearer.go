package httpapi

import (
	"log/slog"
	"net/http"
	"strings"

	"authql/auth"
)

// bearer is the middleware of RFC 6750 section 2.1 for the endpoints that
// serve users. It only adds to the request's context: without an
// Authorization header the request goes on anonymously, and with a valid
// bearer token it carries the token's user (read from the database for this
// request). A token that is not valid is refused with 401, a malformed header
// with 400, both with a WWW-Authenticate challenge (RFC 6750 section 3).
//
// refuse writes the body of a refusal, in the protected endpoint's format.
func bearer(svc *auth.Service, logger *slog.Logger, refuse RefuseFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			headers := r.Header.Values("Authorization")
			if len(headers) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			token, err := bearerToken(headers)
			if err != nil {
				writeBearerError(w, r, logger, refuse, err)
				return
			}
			id, err := svc.Authenticate(r.Context(), token, RequestOrigin(r.Context()))
			if err != nil {
				writeBearerError(w, r, logger, refuse, err)
				return
			}
			setLogUser(r.Context(), id.User.ID)
			next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
		})
	}
}

// bearerToken returns the token of the one Authorization header, which must
// be "Bearer" (any case), one space, and a b64token (RFC 6750 section 2.1).
func bearerToken(headers []string) (string, error) {
	if len(headers) > 1 {
		return "", auth.Errorf(auth.CodeInvalidRequest, "send one Authorization header")
	}
	scheme, token, ok := strings.Cut(headers[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", auth.Errorf(auth.CodeInvalidRequest, "the Authorization header must be: Bearer <token>")
	}
	if !isB64Token(token) {
		return "", auth.Errorf(auth.CodeInvalidRequest, "the bearer token is not a b64token (RFC 6750 section 2.1)")
	}
	return token, nil
}

// isB64Token reports whether s matches 1*( ALPHA / DIGIT / "-" / "." / "_" /
// "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~+/", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// bearerErrors maps what can go wrong with a bearer token to the HTTP
// status and the RFC 6750 error code (none for faults of the server).
var bearerErrors = map[auth.Code]struct {
	status  int
	rfc6750 string
}{
	auth.CodeInvalidRequest: {http.StatusBadRequest, "invalid_request"},
	auth.CodeInvalidToken:   {http.StatusUnauthorized, "invalid_token"},
	auth.CodeUnavailable:    {http.StatusServiceUnavailable, ""},
	auth.CodeInternal:       {http.StatusInternalServerError, ""},
}

// RefuseFunc writes the body of a refused bearer token's response, in the
// protected endpoint's own format (GraphQL's, for /query): the middleware
// has set the status's headers (WWW-Authenticate, Retry-After); e is safe
// to show, and requestID names the request for an internal error.
type RefuseFunc func(w http.ResponseWriter, r *http.Request, status int, e *auth.Error, requestID string)

// writeBearerError answers a request whose bearer token was refused: the
// status and challenge of RFC 6750 section 3 here, the body by refuse.
func writeBearerError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, refuse RefuseFunc, err error) {
	ae, ok := auth.AsError(err)
	mapped, known := bearerErrors[auth.ErrorCode(err)]
	if !ok || !known || ae.Code == auth.CodeInternal {
		ae, mapped = internalError(r, logger, err), bearerErrors[auth.CodeInternal]
	}
	h := w.Header()
	switch {
	case mapped.rfc6750 != "":
		h.Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="`+mapped.rfc6750+
			`", error_description="`+safeDescription(ae.Message)+`"`)
	case ae.RetryAfter > 0:
		h.Set("Retry-After", retryAfter(ae))
	}
	refuse(w, r, mapped.status, ae, RequestID(r.Context()))
}
