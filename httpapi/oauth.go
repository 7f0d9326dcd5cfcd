package httpapi

import (
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"authql/auth"
)

// realm names the protection space in WWW-Authenticate challenges.
const realm = "authql"

// oauthStatus is the HTTP status of each error code on the OAuth2 endpoints
// (RFC 6749 section 5.2: 400, and 401 for invalid_client).
var oauthStatus = map[auth.Code]int{
	auth.CodeInvalidRequest:       http.StatusBadRequest,
	auth.CodeInvalidGrant:         http.StatusBadRequest,
	auth.CodeInvalidScope:         http.StatusBadRequest,
	auth.CodeUnsupportedGrantType: http.StatusBadRequest,
	auth.CodeInvalidClient:        http.StatusUnauthorized,
	auth.CodeUnauthorizedClient:   http.StatusBadRequest,
	auth.CodeRateLimited:          http.StatusTooManyRequests,
	auth.CodeUnavailable:          http.StatusServiceUnavailable,
	auth.CodeInternal:             http.StatusInternalServerError,
}

// noStore sets the cache headers that every token endpoint response carries
// (RFC 6749 section 5.1).
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // a failed write means the client left
}

type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// writeOAuthError writes err as an RFC 6749 section 5.2 error response. An
// error that is not an *auth.Error, or is CodeInternal, is logged with the
// request id, and the client gets only that id.
func writeOAuthError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	ae, ok := auth.AsError(err)
	status, known := 0, false
	if ok {
		status, known = oauthStatus[ae.Code]
	}
	if !known || ae.Code == auth.CodeInternal {
		ae = internalError(r, logger, err)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	noStore(h)
	switch {
	case ae.Code == auth.CodeInvalidClient:
		h.Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	case ae.RetryAfter > 0:
		h.Set("Retry-After", retryAfter(ae))
	}
	writeJSON(w, status, "application/json", oauthErrorBody{
		Error:       string(ae.Code),
		Description: safeDescription(ae.Message),
	})
}

// internalError logs err under the request's id and returns what the client
// may see of it.
func internalError(r *http.Request, logger *slog.Logger, err error) *auth.Error {
	id := RequestID(r.Context())
	logger.ErrorContext(r.Context(), "internal error", "request_id", id,
		"method", r.Method, "path", r.URL.Path, "err", err)
	return auth.Errorf(auth.CodeInternal, "internal server error (request id %s)", id)
}

// retryAfter is the Retry-After header value of e, in whole seconds.
func retryAfter(e *auth.Error) string {
	return strconv.Itoa(max(1, int(math.Ceil(e.RetryAfter.Seconds()))))
}

// safeDescription makes msg fit the error_description syntax of RFC 6749
// section 5.2 and the quoted-string of RFC 6750 section 3: printable ASCII
// without '"' or '\'.
func safeDescription(msg string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\' || r < 0x20 || r > 0x7E:
			return '?'
		}
		return r
	}, msg)
}
