package httpapi

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"authql/auth"
)

// bearer is the middleware of RFC 6750 section 2.1 for the endpoints that
// serve users. It only adds to the request's context: without an
// Authorization header the request goes on anonymously, and with a valid
// bearer token it carries the token's user (read from the database for this
// request). A token that is not valid is refused with 401, a malformed header
// with 400, both with a WWW-Authenticate challenge (RFC 6750 section 3) and
// a GraphQL-shaped body.
func bearer(svc *auth.Service, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			headers := r.Header.Values("Authorization")
			if len(headers) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			token, err := bearerToken(headers)
			if err != nil {
				writeBearerError(w, r, logger, err)
				return
			}
			id, err := svc.Authenticate(r.Context(), token)
			if err != nil {
				writeBearerError(w, r, logger, err)
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
// status, the RFC 6750 error code (none for faults of the server), and the
// GraphQL extensions.code of the body.
var bearerErrors = map[auth.Code]struct {
	status      int
	rfc6750     string
	graphqlCode string
}{
	auth.CodeInvalidRequest: {http.StatusBadRequest, "invalid_request", "BAD_USER_INPUT"},
	auth.CodeInvalidToken:   {http.StatusUnauthorized, "invalid_token", "UNAUTHENTICATED"},
	auth.CodeUnavailable:    {http.StatusServiceUnavailable, "", "RATE_LIMITED"},
	auth.CodeInternal:       {http.StatusInternalServerError, "", "INTERNAL_SERVER_ERROR"},
}

type graphqlErrorBody struct {
	Errors []graphqlError `json:"errors"`
}

type graphqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// writeBearerError answers a request whose bearer token was refused.
func writeBearerError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	ae, ok := errors.AsType[*auth.Error](err)
	mapped, known := bearerErrors[auth.ErrorCode(err)]
	if !ok || !known || ae.Code == auth.CodeInternal {
		ae, mapped = internalError(r, logger, err), bearerErrors[auth.CodeInternal]
	}
	ext := map[string]any{"code": mapped.graphqlCode}
	h := w.Header()
	switch {
	case mapped.rfc6750 != "":
		h.Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="`+mapped.rfc6750+
			`", error_description="`+safeDescription(ae.Message)+`"`)
	case ae.RetryAfter > 0:
		h.Set("Retry-After", retryAfter(ae))
		ext["retryAfter"], _ = strconv.Atoi(retryAfter(ae))
	case ae.Code == auth.CodeInternal:
		ext["requestId"] = auth.RequestID(r.Context())
	}
	writeJSON(w, mapped.status, graphqlContentType(r), graphqlErrorBody{
		Errors: []graphqlError{{Message: ae.Message, Extensions: ext}},
	})
}

// graphqlContentType is application/graphql-response+json when the request's
// Accept header lists it (GraphQL over HTTP: clients that do, such as
// Apollo Client 4, then read the body of a non-200 response), and
// application/json otherwise.
func graphqlContentType(r *http.Request) string {
	for _, accept := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(accept, ",") {
			mediaType, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mediaType != "application/graphql-response+json" {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
				continue
			}
			return "application/graphql-response+json"
		}
	}
	return "application/json"
}
