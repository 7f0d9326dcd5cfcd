package httpapi

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"authql/auth"
)

// maxTokenBody bounds a token request body; real ones are a few hundred
// bytes.
const maxTokenBody = 16 << 10

// tokenResponse is the body of a successful token response (RFC 6749
// section 5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// tokenHandler is the token endpoint, POST /token (RFC 6749 section 3.2):
// the password grant (section 4.3) and the refresh token grant (section 6).
// It calls the same Service methods as the GraphQL mutations.
func tokenHandler(svc *auth.Service, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		grant, err := token(w, r, svc)
		if err != nil {
			writeOAuthError(w, r, logger, err)
			return
		}
		setLogUser(r.Context(), grant.User.ID)
		noStore(w.Header())
		writeJSON(w, http.StatusOK, "application/json", tokenResponse{
			AccessToken:  grant.AccessToken,
			TokenType:    "Bearer",
			ExpiresIn:    int(grant.ExpiresIn.Seconds()),
			RefreshToken: grant.RefreshToken,
			Scope:        auth.FormatScope(grant.Scopes),
		})
	})
}

// postOnly answers every method but POST on the OAuth2 endpoints: 405 with
// Allow: POST, and the cache headers of every response of theirs.
func postOnly(w http.ResponseWriter, r *http.Request) {
	noStore(w.Header())
	w.Header().Set("Allow", http.MethodPost)
	writeJSON(w, http.StatusMethodNotAllowed, "application/json", oauthErrorBody{
		Error:       string(auth.CodeInvalidRequest),
		Description: r.URL.Path + " accepts only POST",
	})
}

func token(w http.ResponseWriter, r *http.Request, svc *auth.Service) (*auth.Grant, error) {
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	origin := RequestOrigin(r.Context())
	client, err := authenticateClient(r, form, svc)
	if err != nil {
		return nil, err
	}
	switch form["grant_type"] {
	case "":
		return nil, missing("grant_type")
	case "password":
		if form["username"] == "" {
			return nil, missing("username")
		}
		if form["password"] == "" {
			return nil, missing("password")
		}
		return svc.Login(r.Context(), auth.PasswordGrant{
			Username: form["username"],
			Password: form["password"],
			Scope:    form["scope"],
			Client:   client,
			Origin:   origin,
		})
	case "refresh_token":
		if form["refresh_token"] == "" {
			return nil, missing("refresh_token")
		}
		return svc.Refresh(r.Context(), auth.RefreshGrant{
			RefreshToken: form["refresh_token"],
			Scope:        form["scope"],
			Client:       client,
			Origin:       origin,
		})
	default:
		return nil, auth.Errorf(auth.CodeUnsupportedGrantType,
			"grant_type must be password or refresh_token")
	}
}

func missing(param string) error {
	return auth.Errorf(auth.CodeInvalidRequest, "the %s parameter is required", param)
}

// readForm reads the parameters of a token request from its body, as RFC
// 6749 section 3.2 requires: application/x-www-form-urlencoded, nothing in
// the query string, no parameter twice. A parameter with an empty value is
// left out, as if absent (section 3.1).
func readForm(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, auth.Errorf(auth.CodeInvalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, auth.Errorf(auth.CodeInvalidRequest, "parameters must be sent in the body, not in the query string")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenBody))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		return nil, auth.Errorf(auth.CodeInvalidRequest, "the body is larger than %d bytes", maxTokenBody)
	}
	if err != nil {
		return nil, auth.Errorf(auth.CodeInvalidRequest, "the body could not be read")
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, auth.Errorf(auth.CodeInvalidRequest, "the body is not valid form encoding")
	}
	form := make(map[string]string, len(values))
	for name, vs := range values {
		if len(vs) > 1 {
			return nil, auth.Errorf(auth.CodeInvalidRequest, "the %s parameter is repeated", name)
		}
		if vs[0] != "" {
			form[name] = vs[0]
		}
	}
	return form, nil
}

// authenticateClient returns the client of a token or revocation request,
// or nil for the first-party client (RFC 6749 section 2.3). Credentials come
// as HTTP Basic, with id and secret form-urlencoded (Appendix B), or as
// client_id and client_secret in the body, never both (section 2.3.1).
func authenticateClient(r *http.Request, form map[string]string, svc *auth.Service) (*auth.Client, error) {
	id, secret := form["client_id"], form["client_secret"]
	if header := r.Header.Get("Authorization"); header != "" {
		if _, hasSecret := form["client_secret"]; hasSecret {
			return nil, auth.Errorf(auth.CodeInvalidRequest, "use HTTP Basic or client_secret in the body, not both")
		}
		basicID, basicSecret, err := parseBasic(header)
		if err != nil {
			return nil, err
		}
		if id != "" && id != basicID {
			return nil, auth.Errorf(auth.CodeInvalidRequest, "client_id differs from the HTTP Basic user name")
		}
		id, secret = basicID, basicSecret
	}
	if id == "" && secret != "" {
		return nil, auth.Errorf(auth.CodeInvalidClient, "client_secret without client_id")
	}
	return svc.AuthenticateClient(r.Context(), id, secret, RequestOrigin(r.Context()))
}

// parseBasic decodes HTTP Basic client credentials (RFC 7617) whose parts
// are form-urlencoded (RFC 6749 Appendix B).
func parseBasic(header string) (id, secret string, err error) {
	bad := auth.Errorf(auth.CodeInvalidClient, "the Authorization header must be HTTP Basic client credentials")
	scheme, encoded, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", bad
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", "", bad
	}
	rawID, rawSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", bad
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", bad
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", bad
	}
	return id, secret, nil
}
