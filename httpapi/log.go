package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"authql/auth"
)

// requestInfo is what the edge knows of a request beyond net/http: its id,
// where it came from, and, once known, the user it acted for.
type requestInfo struct {
	id     string
	origin auth.Origin
	userID string
	// route is the pattern that matched (recordRoute); "" until one did.
	route string
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// setLogUser records the user a request acted for, for its log line.
func setLogUser(ctx context.Context, userID string) {
	if info := infoFrom(ctx); info != nil {
		info.userID = userID
	}
}

// RequestID returns the id of the request of ctx (its X-Request-Id), or ""
// outside a request.
func RequestID(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

// RequestOrigin returns where the request of ctx came from: the client
// address that throttling counts (see clientAddr) and the User-Agent.
func RequestOrigin(ctx context.Context) auth.Origin {
	if info := infoFrom(ctx); info != nil {
		return info.origin
	}
	return auth.Origin{}
}

// LogHandler wraps h so that every record logged with a request's context
// names the request's id (request_id), unless it does already: the log
// lines of the core and of GraphQL, which know nothing of request ids, can
// then be tied to the request line and to the id a client was given.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		named := false
		r.Attrs(func(a slog.Attr) bool {
			named = a.Key == "request_id"
			return !named
		})
		if !named {
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// logRequests gives each request an id, returned in the X-Request-Id header
// and named by every log line and internal error of the request, records
// where the request came from, logs one line per request, and tells metrics
// (when not nil) its route, status and duration. It logs no header, query or
// body, so no token or password reaches the log.
func logRequests(logger *slog.Logger, addressing Addressing, metrics Observer, next http.Handler) http.Handler {
	// A misconfigured proxy is said once, not on every request.
	var untrusted sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := auth.NewID()[:16]
		w.Header().Set("X-Request-Id", id)
		addr := addressing.clientAddr(r)
		if addressing.Header != "" && r.Header.Get(addressing.Header) != "" && !addressing.trustsPeer(r) {
			untrusted.Do(func() {
				logger.Warn("ignoring the client address header of an untrusted peer; if a proxy sends it, list the proxy in TRUSTED_PROXIES",
					"header", addressing.Header, "peer", peerOf(r))
			})
		}
		info := &requestInfo{id: id, origin: auth.Origin{ClientAddr: addr, UserAgent: r.UserAgent()}}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		took := time.Since(start)
		if metrics != nil {
			metrics.ObserveRequest(routeOf(r, info), rec.status, took)
		}
		attrs := []slog.Attr{
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			Milliseconds("duration_ms", took),
			slog.String("client", addr),
		}
		if info.userID != "" {
			attrs = append(attrs, slog.String("user_id", info.userID))
		}
		logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
	})
}

// routeOf is the route of an answered request for metrics: the pattern
// that matched, or one of two fixed names, so that the paths clients send
// cannot add label values.
func routeOf(r *http.Request, info *requestInfo) string {
	switch {
	case info.route != "":
		return info.route
	case r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "":
		return RoutePreflight // as rs/cors recognises one
	}
	return RouteUnmatched
}

// Milliseconds is a log attribute for a duration: a number of milliseconds,
// with microseconds as decimals, under a key that names the unit. A
// slog.Duration is a bare count of nanoseconds in JSON, and Go's "1.5s"
// syntax in text, which log pipelines can neither chart nor compare.
func Milliseconds(key string, d time.Duration) slog.Attr {
	return slog.Float64(key, float64(d.Microseconds())/1000)
}

// Addressing says where a request's client address is found: the
// connection's peer, or, when the peer is a trusted proxy, Header.
type Addressing struct {
	// Header, when set, names the header in which a trusted proxy gives
	// the client's address; the last entry counts (the one the proxy
	// appended).
	Header string
	// TrustedProxies are the peers whose Header is believed. A header
	// from any other peer is ignored: whoever reaches the server directly
	// could otherwise claim any address.
	TrustedProxies []netip.Prefix
}

// Loopback is the default of TrustedProxies: a proxy on the same host,
// with the server listening on loopback only.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// clientAddr is the address that login throttling counts a request
// against: the connection's peer, or, when the peer is a trusted proxy and
// a.Header is set, the last address in that header. Never a header by
// default: clients can write any header. When the header's last entry is
// not an IP address (with or without a port), the peer counts instead: a
// value used verbatim would let a client pick a new throttling key for
// every request, or make each key as long as the header limit allows. IPv6
// addresses count by /64, the block one host usually holds, so every key is
// a short canonical address or prefix.
func (a Addressing) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, peerOK := parseClientIP(host)
	if a.Header != "" && peerOK && a.trusts(peer) {
		if values := r.Header.Values(a.Header); len(values) > 0 {
			last := values[len(values)-1]
			if ip, ok := parseClientIP(strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])); ok {
				return throttleKey(ip)
			}
		}
	}
	if peerOK {
		return throttleKey(peer)
	}
	return host // not an IP network (a test's "pipe"); not written by the client
}

// trustsPeer reports whether the peer of r is one of the trusted proxies.
func (a Addressing) trustsPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, ok := parseClientIP(host)
	return ok && a.trusts(peer)
}

// peerOf is the connection's peer address of r, for a log line.
func peerOf(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// trusts reports whether peer is one of the trusted proxies.
func (a Addressing) trusts(peer netip.Addr) bool {
	peer = peer.Unmap().WithZone("")
	for _, p := range a.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// parseClientIP parses an IP address, alone or with a port ("[::1]:443").
func parseClientIP(s string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

// throttleKey is ip without a zone, IPv4-mapped addresses as IPv4, and IPv6
// as its /64.
//
// An IPv6 address that carries an IPv4 one counts as that IPv4 address: a
// NAT64 address (64:ff9b::/96, RFC 6052), whose /64 every IPv4 client
// behind the translator would share, and a 6to4 address (2002::/16, RFC
// 3056), of which one IPv4 host holds 65,536 /64s.
func throttleKey(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if v4, ok := embeddedIPv4(ip); ok {
		return v4.String()
	}
	if ip.Is6() {
		prefix, _ := ip.Prefix(64)
		return prefix.String()
	}
	return ip.String()
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address that a NAT64 or 6to4 address
// carries.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
