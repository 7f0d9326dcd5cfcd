package graph

import (
	"authql/auth"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// overHTTP adapts gqlgen's transports to the GraphQL-over-HTTP
// specification where they fall short, and refuses batches.
func overHTTP(next http.Handler) http.Handler {
	return refuseBatches(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &conformingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		cw.finish()
	}))
}

// conformingWriter fixes two legacy behaviours of gqlgen's responses to a
// request that fails before execution (parse, validation, variable
// coercion):
//   - with application/json it answers 422, where the specification says a
//     server SHOULD answer 200 (section 6.4.1); 400 for unparseable JSON
//     bodies stays;
//   - with application/graphql-response+json it sends "data": null, where
//     the response SHOULD have no data entry (section 6.4.2).
type conformingWriter struct {
	http.ResponseWriter
	status int
	buf    *bytes.Buffer // holds a graphql-response+json error body
}

func (w *conformingWriter) WriteHeader(status int) {
	mediaType, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
	switch {
	case mediaType == "application/json" && status == http.StatusUnprocessableEntity:
		status = http.StatusOK
	case mediaType == "application/graphql-response+json" && status >= 400 && w.buf == nil:
		w.status, w.buf = status, &bytes.Buffer{}
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *conformingWriter) Write(b []byte) (int, error) {
	if w.buf != nil {
		return w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// finish sends a held error body without its null data entry.
func (w *conformingWriter) finish() {
	if w.buf == nil {
		return
	}
	body := w.buf.Bytes()
	var resp map[string]json.RawMessage
	if json.Unmarshal(body, &resp) == nil && string(resp["data"]) == "null" {
		delete(resp, "data")
		if b, err := json.Marshal(resp); err == nil {
			body = b
		}
	}
	w.ResponseWriter.WriteHeader(w.status)
	w.ResponseWriter.Write(body)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *conformingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refuseBatches answers a POST whose body is a JSON array, a batch of
// operations, with 400: one operation per request, so that limits and login
// throttling apply to each.
func refuseBatches(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeRequestError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "the request body is too large")
			return
		}
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
			writeRequestError(w, http.StatusBadRequest, "BATCH_NOT_SUPPORTED",
				"batched operations are not supported; send one operation per request")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// writeRequestError answers a request that never reached GraphQL execution.
func writeRequestError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]string{"code": code}}},
	})
}

// WriteAuthError writes the GraphQL-shaped body of a request refused before
// GraphQL ran, because its bearer token was: errors[0].extensions.code
// from the one code table (extensionCodes), retryAfter when e has one, and
// requestId for an internal error. It is served as
// application/graphql-response+json when the request's Accept allows it
// (GraphQL over HTTP: clients that ask, such as Apollo Client 4, then read
// the body of a non-200 response), and as application/json otherwise.
func WriteAuthError(w http.ResponseWriter, r *http.Request, status int, e *auth.Error, requestID string) {
	ext := map[string]any{"code": extensionCodes[e.Code]}
	switch {
	case e.Code == auth.CodeInternal:
		ext["requestId"] = requestID
	case e.RetryAfter > 0:
		ext["retryAfter"] = int(math.Ceil(e.RetryAfter.Seconds()))
	}
	type gqlError struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
	w.Header().Set("Content-Type", responseContentType(r))
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Errors []gqlError `json:"errors"`
	}{[]gqlError{{e.Message, ext}}})
}

// responseContentType is application/graphql-response+json when the
// request's Accept header lists it with a q above 0, and application/json
// otherwise.
func responseContentType(r *http.Request) string {
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
