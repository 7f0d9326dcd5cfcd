package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"authql/httpapi"
)

// requests records what the edge tells its Observer.
type requests struct {
	mu   sync.Mutex
	seen []observed
}

type observed struct {
	route  string
	status int
}

func (r *requests) ObserveRequest(route string, status int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took <= 0 {
		route += " (no duration)"
	}
	r.seen = append(r.seen, observed{route, status})
}

func (r *requests) take() []observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen
	r.seen = nil
	return seen
}

// Every request is reported once, under the ServeMux pattern that answered
// it, or under RouteUnmatched or RoutePreflight: never its path.
func TestObserverRoutes(t *testing.T) {
	seen := &requests{}
	s := newServer(t, func(c config) { c.http.Metrics = seen })
	form := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		method, target, contentType string
		headers                     map[string]string
		want                        observed
	}{
		{"GET", "/", "", nil, observed{"GET /{$}", 200}},
		{"GET", "/healthz", "", nil, observed{"GET /healthz", 200}},
		{"GET", "/healthz/", "", nil, observed{"GET /healthz/{$}", 404}},
		{"GET", "/query?query=%7B__typename%7D", "", nil, observed{"GET /query", 200}},
		{"POST", "/token", form, nil, observed{"POST /token", 400}},
		{"PUT", "/token", "", nil, observed{"/token", 405}},
		{"GET", "/token/", "", nil, observed{"/token/{$}", 404}},
		{"POST", "/revoke", form, nil, observed{"POST /revoke", 400}},
		{"GET", "/.well-known/oauth-authorization-server", "", nil, observed{"GET /.well-known/oauth-authorization-server", 200}},
		// ServeMux's own answers.
		{"DELETE", "/query", "", nil, observed{httpapi.RouteUnmatched, 405}},
		{"GET", "/secret-admin-panel", "", nil, observed{httpapi.RouteUnmatched, 404}},
		{"GET", "/token/../healthz", "", nil, observed{httpapi.RouteUnmatched, http.StatusTemporaryRedirect}},
		// rs/cors answers preflights before the routes.
		{"OPTIONS", "/query", "", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
			observed{httpapi.RoutePreflight, 204}},
		{"OPTIONS", "/anything", "", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
			observed{httpapi.RoutePreflight, 204}},
	} {
		req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(""))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		got := seen.take()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s %s (%d): observed %v; want [%v]", tc.method, tc.target, rec.Code, got, tc.want)
		}
	}
}

// Without an Observer the edge serves as before.
func TestNoObserver(t *testing.T) {
	s := newServer(t)
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d", rec.Code)
	}
}
