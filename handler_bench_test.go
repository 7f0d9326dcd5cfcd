package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"authql/auth"
	"authql/auth/authtest"
)

// BenchmarkHandler measures the server's own work per /query request: the
// whole handler newApp builds, writing its JSON log line to a file, called
// without a network, so that neither a client nor the kernel's sockets
// count. go run ./loadbench measures the binary over loopback, where they
// do.
func BenchmarkHandler(b *testing.B) {
	// The collector as the server sets it (gc.go).
	restoreGC(b)
	tuneGC(os.Getenv)
	cfg := defaultConfig()
	cfg.store.path = filepath.Join(b.TempDir(), "authql.db")
	cfg.auth.BcryptCost = 4
	logFile, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	a, err := newApp(context.Background(), cfg, newLogger("json", logFile))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	authtest.MustCreateUser(b, a.service, "alice", alicePassword)
	grant, err := a.service.Login(context.Background(), auth.PasswordGrant{Username: "alice", Password: alicePassword})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, token, query, want string }{
		{"anonymous", "", `{"query":"{ __typename }"}`, `{"data":{"__typename":"Query"}}`},
		{"authenticated", grant.AccessToken, `{"query":"{ __typename }"}`, `{"data":{"__typename":"Query"}}`},
		{"me", grant.AccessToken, `{"query":"{ me { id username } }"}`,
			`{"data":{"me":{"id":"` + grant.User.ID + `","username":"alice"}}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, _ := http.NewRequest(http.MethodPost, "/query", strings.NewReader(bc.query))
				r.RemoteAddr = "127.0.0.1:50000"
				r.Header.Set("Content-Type", "application/json")
				if bc.token != "" {
					r.Header.Set("Authorization", "Bearer "+bc.token)
				}
				w := &bodyWriter{header: http.Header{}}
				a.handler.ServeHTTP(w, r)
				if w.status != http.StatusOK || w.body.String() != bc.want {
					b.Fatalf("%d %s", w.status, w.body.String())
				}
			}
		})
	}
}

// bodyWriter is the least a ResponseWriter does: it keeps the status and
// the body.
type bodyWriter struct {
	header http.Header
	status int
	body   strings.Builder
}

func (w *bodyWriter) Header() http.Header { return w.header }

func (w *bodyWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bodyWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
