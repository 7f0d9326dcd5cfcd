package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
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

// FuzzClientAddr: whatever a client writes in the trusted header, the
// throttling key is a canonical IPv4 address or IPv6 /64 prefix, never the
// text as written.
func FuzzClientAddr(f *testing.F) {
	for _, seed := range []string{"203.0.113.9", "198.51.100.1, 203.0.113.9", "[2001:db8::1]:443", "fe80::1%eth0", "::ffff:192.0.2.7", "junk", "1.2.3.4, ", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		req := httptest.NewRequest(http.MethodPost, "/token", nil)
		req.RemoteAddr = "192.0.2.1:5555"
		req.Header["X-Forwarded-For"] = []string{value}
		got := Addressing{Header: "X-Forwarded-For", TrustedProxies: anywhere}.clientAddr(req)
		if ip, err := netip.ParseAddr(got); err == nil && ip.Is4() && ip.String() == got {
			return
		}
		if p, err := netip.ParsePrefix(got); err == nil && p.Addr().Is6() && p.Bits() == 64 && p.Masked().String() == got {
			return
		}
		t.Fatalf("clientAddr(X-Forwarded-For: %q) = %q; want an IPv4 address or an IPv6 /64", value, got)
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
		{"192.0.2.1:5555", "X-Forwarded-For", "[2001:db8::1]:443", "2001:db8::/64"},
		{"192.0.2.1:5555", "X-Forwarded-For", "fe80::1%" + strings.Repeat("z", 1000), "fe80::/64"},
		// Attacks: a value that is not an address must not become a key,
		// neither a new string per request nor one as long as the header.
		{"192.0.2.1:5555", "X-Forwarded-For", "not-an-address", "192.0.2.1"},
		{"192.0.2.1:5555", "X-Forwarded-For", "request-4711", "192.0.2.1"},
		{"192.0.2.1:5555", "X-Forwarded-For", strings.Repeat("A", 16<<10), "192.0.2.1"},
		{"192.0.2.1:5555", "X-Forwarded-For", "203.0.113.9, " + strings.Repeat("A", 16<<10), "192.0.2.1"},
		{"192.0.2.1:5555", "X-Forwarded-For", "203.0.113.9, ", "192.0.2.1"},
		{"192.0.2.1:5555", "X-Forwarded-For", " ", "192.0.2.1"},
		{"192.0.2.1:5555", "X-Real-IP", "203.0.113.9:99999", "192.0.2.1"},
		{"192.0.2.1:5555", "X-Forwarded-For", "203.0.113.9\njunk", "192.0.2.1"}, // last header line counts
		{"192.0.2.1:5555", "X-Forwarded-For", "junk\n203.0.113.9", "203.0.113.9"},
		{"[2001:db8:1:2:3:4:5:6]:443", "X-Forwarded-For", "junk", "2001:db8:1:2::/64"},
		// IPv6 addresses that carry an IPv4 one count as it: every IPv4
		// client behind a NAT64 translator does not share one /64, and one
		// 6to4 host does not get 65,536 of them.
		{"[64:ff9b::c000:207]:1", "", "", "192.0.2.7"},
		{"[64:ff9b::cb00:7109]:1", "", "", "203.0.113.9"},
		{"[2002:c000:207:1::1]:1", "", "", "192.0.2.7"},
		{"[2002:c000:207:ffff::1]:1", "", "", "192.0.2.7"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/token", nil)
		req.RemoteAddr = tc.remote
		if tc.value != "" {
			for line := range strings.SplitSeq(tc.value, "\n") { // one header line each
				req.Header.Add("X-Forwarded-For", line)
				req.Header.Add("X-Real-IP", line)
			}
		}
		if got := (Addressing{Header: tc.header, TrustedProxies: anywhere}).clientAddr(req); got != tc.want {
			t.Errorf("clientAddr(%s, %s: %.40q) = %q; want %q", tc.remote, tc.header, tc.value, got, tc.want)
		}
	}
}

// anywhere trusts every peer, for the tests of what a proxy's header says.
var anywhere = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// TestClientAddrFromUntrustedPeer: a client that reaches the server
// directly cannot claim an address in CLIENT_IP_HEADER; only a trusted
// proxy's header counts.
func TestClientAddrFromUntrustedPeer(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		remote, want string
		trusted      []netip.Prefix
	}{
		{"10.1.2.3:5555", "203.0.113.9", proxy},
		{"192.0.2.1:5555", "192.0.2.1", proxy},
		{"[::ffff:10.1.2.3]:1", "203.0.113.9", proxy},
		{"127.0.0.1:5555", "203.0.113.9", Loopback},
		{"[::1]:5555", "203.0.113.9", Loopback},
		{"192.0.2.1:5555", "192.0.2.1", Loopback},
	} {
		req := httptest.NewRequest(http.MethodPost, "/token", nil)
		req.RemoteAddr = tc.remote
		req.Header.Set("X-Real-IP", "203.0.113.9")
		if got := (Addressing{Header: "X-Real-IP", TrustedProxies: tc.trusted}).clientAddr(req); got != tc.want {
			t.Errorf("peer %s, trusted %v: %q; want %q", tc.remote, tc.trusted, got, tc.want)
		}
	}
}
