package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The embedded assets are byte for byte the files gqlgen's playground pins
// on the CDN (its subresource-integrity hashes, gqlgen v0.17.95).
func TestPlaygroundAssetsArePinned(t *testing.T) {
	for name, want := range map[string]string{
		graphiqlJS:  "hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=",
		graphiqlCSS: "MEh+B2NdMSpj9kexQNN3QKc8UzMrCXW/Sx/phcpuyIU=",
		reactJS:     "S0lp+k7zWUMk2ixteM6HZvu8L9Eh//OVrt+ZfbCpmgY=",
		reactDOMJS:  "IXWO0ITNDjfnNXIu5POVfqlgYoop36bDzhodR6LW5Pc=",
	} {
		b, err := fs.ReadFile(playgroundFiles, "playground/"+name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s; want %s", name, got, want)
		}
	}
}

// TestPlaygroundDoesNotPersistHeaders: the served page tells GraphiQL not
// to keep the headers editor (a pasted bearer token) in localStorage, its
// storage drops headers from history entries, and its
// Content-Security-Policy still allows its inline script, hashed after the
// changes. (e2e/playground.test.mjs checks localStorage in a browser.)
func TestPlaygroundDoesNotPersistHeaders(t *testing.T) {
	page, _, err := playgroundHandlers()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	if !strings.Contains(body, "shouldPersistHeaders: false,") || strings.Contains(body, "shouldPersistHeaders: true") {
		t.Errorf("the page does not turn header persistence off:\n%s", body)
	}
	if !strings.Contains(body, "k === 'headers' ? undefined : v") {
		t.Errorf("the page's storage keeps headers in history entries:\n%s", body)
	}
	scripts := inlineScript.FindAllStringSubmatch(body, -1)
	if len(scripts) != 1 {
		t.Fatalf("%d inline scripts; want 1", len(scripts))
	}
	sum := sha256.Sum256([]byte(scripts[0][1]))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self' "+hash+";") {
		t.Errorf("CSP %q does not allow the inline script %s", csp, hash)
	}
}

// TestForgetHeadersFailsLoudly: a page other than the one the edits were
// written for (as a gqlgen upgrade could bring) is an error, not a page that
// may store tokens.
func TestForgetHeadersFailsLoudly(t *testing.T) {
	const setItem = "localStorage.setItem(prefixedKey, value);"
	for _, page := range []string{
		"",
		"shouldPersistHeaders: !0, " + setItem,
		"shouldPersistHeaders:true, " + setItem,
		"shouldPersistHeaders: true, shouldPersistHeaders: true, " + setItem,
		"shouldPersistHeaders: true, shouldPersistHeaders: {{.Persist}}, " + setItem,
		"shouldPersistHeaders: true, localStorage.setItem(key, value);",
		"shouldPersistHeaders: true, " + setItem + setItem,
	} {
		if got, err := forgetHeaders([]byte(page)); err == nil {
			t.Errorf("forgetHeaders(%q) = %q, nil; want an error", page, got)
		}
	}
	if _, err := forgetHeaders([]byte("shouldPersistHeaders: true, " + setItem)); err != nil {
		t.Errorf("the page the edits were written for: %v", err)
	}
}
