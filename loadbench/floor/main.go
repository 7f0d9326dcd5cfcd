// Command floor is the least a Go HTTP server can do for the FastAPI peer's
// two endpoints: POST /token and GET /users/me/ answer constants, with no
// token check, no database, no log line. Driven by loadbench as a peer, it
// measures what Go's net/http and the kernel cost per request on a
// machine, the floor under any Go server's figure there:
//
//	go run ./loadbench/floor &
//	go run ./loadbench -peer-only -peer http://127.0.0.1:8001
//
// It sets GOGC as authql does (gc.go).
package main

import (
	"log"
	"net/http"
	"runtime/debug"
	"strings"
)

func main() {
	debug.SetGCPercent(400)
	http.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"floor","token_type":"bearer"}`))
	})
	http.HandleFunc("GET /users/me/", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"username":"johndoe","email":"johndoe@example.com","full_name":"John Doe","disabled":false}`))
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8001", nil))
}
