package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
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
