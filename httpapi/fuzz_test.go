package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"authql/auth"
)

// FuzzReadForm: any token request either yields a form with no empty or
// repeated parameter, or an invalid_request error; nothing panics.
func FuzzReadForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "", "grant_type=password&username=alice&password=x")
	f.Add("application/x-www-form-urlencoded; charset=UTF-8", "", "a=1&a=2")
	f.Add("application/x-www-form-urlencoded", "x=1", "a=%zz")
	f.Add("application/json", "", `{"a":1}`)
	f.Add("", "", "=&&=;")
	f.Add("multipart/form-data; boundary=x", "", "--x--")
	f.Fuzz(func(t *testing.T, contentType, query, body string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", contentType)
		form, err := readForm(httptest.NewRecorder(), req)
		if err != nil {
			if auth.ErrorCode(err) != auth.CodeInvalidRequest {
				t.Fatalf("error %v is not invalid_request", err)
			}
			return
		}
		if query != "" {
			t.Fatalf("accepted a query string %q", query)
		}
		for k, v := range form {
			if v == "" {
				t.Fatalf("parameter %q kept with an empty value", k)
			}
		}
	})
}

// FuzzBearerHeader: a header yields a token only for "Bearer" (any case),
// one space and a b64token; anything else is invalid_request.
func FuzzBearerHeader(f *testing.F) {
	for _, seed := range []string{"Bearer abc", "bearer abc.def-ghi_~+/==", "Bearer", "Bearer ", "Bearer  a", "Basic a", "Bearer a b", "Bearer =", "BEARER x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := bearerToken([]string{header})
		if err != nil {
			if auth.ErrorCode(err) != auth.CodeInvalidRequest {
				t.Fatalf("error %v is not invalid_request", err)
			}
			return
		}
		if !strings.EqualFold(header[:7], "Bearer ") || header[7:] != tok || !isB64Token(tok) {
			t.Fatalf("bearerToken(%q) = %q", header, tok)
		}
	})
}

// FuzzParseBasic: credentials decode or fail with invalid_client.
func FuzzParseBasic(f *testing.F) {
	for _, seed := range []string{"Basic YXBwOnNlY3JldA==", "Basic Og==", "basic YQ==", "Basic !!!", "Bearer x", "Basic JTpz"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if _, _, err := parseBasic(header); err != nil && auth.ErrorCode(err) != auth.CodeInvalidClient {
			t.Fatalf("error %v is not invalid_client", err)
		}
	})
}

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		remote, header, value, want string
	}{
		{"192.0.2.1:5555", "", "", "192.0.2.1"},
		{"192.0.2.1:5555", "", "203.0.113.9", "192.0.2.1"}, // untrusted header ignored
		{"192.0.2.1:5555", "X-Forwarded-For", "203.0.113.9", "203.0.113.9"},
		{"192.0.2.1:5555", "X-Forwarded-For", "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"192.0.2.1:5555", "X-Forwarded-For", "", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", "", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:1", "", "", "192.0.2.7"},
		{"192.0.2.1:5555", "X-Real-IP", "203.0.113.9:1234", "203.0.113.9"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/token", nil)
		req.RemoteAddr = tc.remote
		if tc.value != "" {
			req.Header.Set("X-Forwarded-For", tc.value)
			req.Header.Set("X-Real-IP", tc.value)
		}
		if got := clientAddr(req, tc.header); got != tc.want {
			t.Errorf("clientAddr(%s, %s: %q) = %q; want %q", tc.remote, tc.header, tc.value, got, tc.want)
		}
	}
}
