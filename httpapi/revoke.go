package httpapi

import (
	"log/slog"
	"net/http"

	"authql/auth"
)

// revokeHandler is the revocation endpoint, POST /revoke (RFC 7009): a form
// with token and an optional token_type_hint, and the client authentication
// of the token endpoint. Revoking a refresh or access token ends its session,
// so every token of the session stops working at once. Unknown and already
// revoked tokens get 200 too (section 2.2).
func revokeHandler(svc *auth.Service, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := revoke(w, r, svc); err != nil {
			writeOAuthError(w, r, logger, err)
			return
		}
		noStore(w.Header())
		w.WriteHeader(http.StatusOK)
	})
}

func revoke(w http.ResponseWriter, r *http.Request, svc *auth.Service) error {
	form, err := readForm(w, r)
	if err != nil {
		return err
	}
	client, err := authenticateClient(r, form, svc)
	if err != nil {
		return err
	}
	if form["token"] == "" {
		return missing("token")
	}
	return svc.Revoke(r.Context(), client, form["token"], form["token_type_hint"])
}
