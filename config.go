package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"authql/auth"
	"authql/auth/bcryptpool"
	"authql/db/postgres"
	"authql/db/sqlite"
	"authql/graph"
	"authql/httpapi"
)

// config is every setting of the README's configuration tables, each bound
// straight into the options of the package that consumes it.
type config struct {
	server serverOptions
	store  storeOptions
	pool   poolOptions
	auth   auth.Config
	http   httpapi.Options
	graph  graph.Options
}

// serverOptions are the listener's and the http.Server's settings.
type serverOptions struct {
	addr              string
	metricsAddr       string // "" means no metrics at all
	logFormat         string
	maxHeaderBytes    int
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	shutdownTimeout   time.Duration
}

// storeOptions choose the database and tune how long it may keep a
// request waiting.
type storeOptions struct {
	path string // DB_PATH: the SQLite file
	url  string // DATABASE_URL: PostgreSQL instead, when set
	// Not settings: tests shorten the waits, and the CLI refuses to create
	// a database.
	sqlite   sqlite.Options
	postgres postgres.Options
}

// poolOptions size the bcrypt worker pool (auth/bcryptpool).
type poolOptions struct {
	workers int
	wait    time.Duration
	metrics bcryptpool.Observer // not a setting: newApp sets it with METRICS_ADDR
}

// setting is one row of the configuration: its flag, its environment
// variable, its usage, its default, and how its text becomes the option it
// is bound to. apply parses and checks the text, and says what form it
// wants when the text is not one.
type setting struct {
	flag, env, usage string
	def              string
	apply            func(text string) error
	// secret settings never show their value in a message.
	secret bool
}

// settings are the rows, bound to c's fields.
func (c *config) settings() []setting {
	const forever = math.MaxInt
	return []setting{
		{flag: "addr", env: "ADDR", usage: "listen `address`", def: ":8080",
			apply: stringInto(&c.server.addr, nonEmpty)},
		{flag: "metrics-addr", env: "METRICS_ADDR",
			usage: "listen `address` of a second server, for GET /metrics (Prometheus) only (default: no metrics)",
			apply: stringInto(&c.server.metricsAddr, nil)},
		{flag: "db", env: "DB_PATH", usage: "SQLite `file` (created with mode 0600 and migrated on start)", def: "authql.db",
			apply: stringInto(&c.store.path, fileName)},
		{flag: "database-url", env: "DATABASE_URL", secret: true,
			usage: "PostgreSQL `URL` (postgres://…), to use instead of DB_PATH; pool_max_conns=N in it sizes the pool",
			apply: stringInto(&c.store.url, postgresURL)},
		{flag: "jwt-secret", env: "JWT_SECRET", secret: true,
			usage: "HS256 `key`, at least 32 bytes (default: asymmetric keys, see JWT_ALG)",
			apply: secretInto(&c.auth.Secret, auth.MinSecretLen)},
		{flag: "jwt-alg", env: "JWT_ALG", def: auth.AlgES256,
			usage: "algorithm of the generated signing keys: ES256, EdDSA or RS256 (ignored with JWT_SECRET)",
			apply: stringInto(&c.auth.SigningAlgorithm, oneOf(auth.SigningAlgorithms...))},
		{flag: "key-encryption-key", env: "KEY_ENCRYPTION_KEY", secret: true,
			usage: "`secret` of 32 bytes or more: store the private signing keys and the refresh token secret encrypted (AES-256-GCM)",
			apply: sealerInto(&c.auth.Sealer)},
		{flag: "key-rotation-interval", env: "KEY_ROTATION_INTERVAL", def: "720h",
			usage: "age at which a signing key is replaced by itself (0: never)",
			apply: durationInto(&c.auth.KeyRotationInterval, notNegative)},
		{flag: "jwt-issuer", env: "JWT_ISSUER", usage: "iss claim, checked on every token (default: PUBLIC_URL when set, else authql)", def: "authql",
			apply: stringInto(&c.auth.Issuer, nonEmpty)},
		{flag: "jwt-audience", env: "JWT_AUDIENCE", usage: "aud claim when set, checked on every token",
			apply: stringInto(&c.auth.Audience, nil)},
		{flag: "access-token-ttl", env: "ACCESS_TOKEN_TTL", usage: "access token lifetime", def: "15m",
			apply: durationInto(&c.auth.AccessTokenTTL, positive)},
		{flag: "refresh-token-ttl", env: "REFRESH_TOKEN_TTL", usage: "refresh token and session lifetime", def: "720h",
			apply: durationInto(&c.auth.RefreshTokenTTL, positive)},
		{flag: "refresh-reuse-grace", env: "REFRESH_REUSE_GRACE", def: "10s",
			usage: "window in which a replayed refresh token is not treated as theft",
			apply: durationInto(&c.auth.RefreshReuseGrace, notNegative)},
		{flag: "bcrypt-cost", env: "BCRYPT_COST", usage: "bcrypt cost for new password hashes (4..31)", def: "12",
			apply: intInto(&c.auth.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)},
		{flag: "signup", env: "SIGNUP", usage: "whether the signup mutation is open", def: "true",
			apply: negatedBoolInto(&c.auth.SignupClosed)},
		{flag: "cors-origins", env: "CORS_ORIGINS", usage: "comma-separated allowed browser `origins`", def: "*",
			apply: originsInto(&c.http.CORSOrigins)},
		{flag: "public-url", env: "PUBLIC_URL",
			usage: "base `URL` of the server in the OAuth2 metadata (default: from each request)",
			apply: baseURLInto(&c.http.PublicURL)},
		{flag: "log-format", env: "LOG_FORMAT", usage: "log format: text or json", def: "text",
			apply: stringInto(&c.server.logFormat, oneOf("text", "json"))},
		{flag: "client-ip-header", env: "CLIENT_IP_HEADER",
			usage: "`header` in which a trusted proxy puts the client address, e.g. X-Forwarded-For (default: the connection's address)",
			apply: stringInto(&c.http.ClientIPHeader, nil)},
		{flag: "trusted-proxies", env: "TRUSTED_PROXIES", def: "127.0.0.0/8,::1/128",
			usage: "comma-separated addresses or `CIDRs` of the proxies whose CLIENT_IP_HEADER is believed",
			apply: prefixesInto(&c.http.TrustedProxies)},
		{flag: "login-user-limit", env: "LOGIN_USER_LIMIT", def: auth.DefaultLoginUserLimit.String(),
			usage: "failed logins allowed per username from addresses it did not log in from in 30 days, as `N/duration`",
			apply: limitInto(&c.auth.LoginUserLimit)},
		{flag: "login-user-addr-limit", env: "LOGIN_USER_ADDR_LIMIT", def: auth.DefaultLoginPairLimit.String(),
			usage: "failed logins allowed per username and client address, as `N/duration`",
			apply: limitInto(&c.auth.LoginPairLimit)},
		{flag: "login-addr-limit", env: "LOGIN_ADDR_LIMIT", def: auth.DefaultLoginAddrLimit.String(),
			usage: "failed logins and client authentications allowed per client address, as `N/duration`",
			apply: limitInto(&c.auth.LoginAddrLimit)},
		{flag: "client-auth-limit", env: "CLIENT_AUTH_LIMIT", def: auth.DefaultClientAuthLimit.String(),
			usage: "failed client authentications allowed per client id, as `N/duration`",
			apply: limitInto(&c.auth.ClientAuthLimit)},
		{flag: "signup-addr-limit", env: "SIGNUP_ADDR_LIMIT", def: auth.DefaultSignupAddrLimit.String(),
			usage: "signups allowed per client address, as `N/duration`",
			apply: limitInto(&c.auth.SignupAddrLimit)},
		{flag: "refresh-limit", env: "REFRESH_LIMIT", def: auth.DefaultRefreshLimit.String(),
			usage: "refresh token rotations allowed per session, as `N/duration`",
			apply: limitInto(&c.auth.RefreshLimit)},
		{flag: "bcrypt-concurrency", env: "BCRYPT_CONCURRENCY", def: strconv.Itoa(runtime.NumCPU()),
			usage: "bcrypt operations allowed at once (default: the number of CPUs)",
			apply: intInto(&c.pool.workers, 1, forever)},
		{flag: "bcrypt-wait", env: "BCRYPT_WAIT", usage: "how long a login waits for a bcrypt slot before 503", def: "1s",
			apply: durationInto(&c.pool.wait, positive)},
		{flag: "max-query-bytes", env: "MAX_QUERY_BYTES", usage: "largest /query request body", def: strconv.Itoa(128 << 10),
			apply: int64Into(&c.http.MaxQueryBytes)},
		{flag: "max-header-bytes", env: "MAX_HEADER_BYTES", usage: "largest request header block", def: strconv.Itoa(16 << 10),
			apply: intInto(&c.server.maxHeaderBytes, 1, forever)},
		{flag: "max-query-depth", env: "MAX_QUERY_DEPTH", usage: "deepest GraphQL selection nesting", def: "8",
			apply: intInto(&c.graph.MaxDepth, 1, forever)},
		{flag: "max-query-complexity", env: "MAX_QUERY_COMPLEXITY", usage: "most fields one GraphQL operation may resolve", def: "300",
			apply: intInto(&c.graph.MaxComplexity, 1, forever)},
		{flag: "max-aliases", env: "MAX_ALIASES", usage: "most aliased fields in one GraphQL operation", def: "30",
			apply: intInto(&c.graph.MaxAliases, 1, forever)},
		{flag: "introspection", env: "INTROSPECTION", usage: "whether GraphQL introspection is allowed", def: "true",
			apply: boolInto(&c.graph.Introspection)},
		{flag: "playground", env: "PLAYGROUND", usage: "whether GET / serves the GraphQL playground", def: "true",
			apply: boolInto(&c.http.Playground)},
		{flag: "read-header-timeout", env: "READ_HEADER_TIMEOUT", usage: "time allowed to send request headers", def: "5s",
			apply: durationInto(&c.server.readHeaderTimeout, positive)},
		{flag: "read-timeout", env: "READ_TIMEOUT", usage: "time allowed to send a whole request", def: "15s",
			apply: durationInto(&c.server.readTimeout, positive)},
		{flag: "write-timeout", env: "WRITE_TIMEOUT", usage: "time allowed to answer a request", def: "30s",
			apply: durationInto(&c.server.writeTimeout, positive)},
		{flag: "idle-timeout", env: "IDLE_TIMEOUT", usage: "how long an idle keep-alive connection stays open", def: "2m",
			apply: durationInto(&c.server.idleTimeout, positive)},
		{flag: "shutdown-timeout", env: "SHUTDOWN_TIMEOUT", usage: "how long SIGTERM waits for requests in flight", def: "15s",
			apply: durationInto(&c.server.shutdownTimeout, positive)},
	}
}

// defaultConfig returns the configuration with every setting at its
// default.
func defaultConfig() config {
	var c config
	for _, s := range c.settings() {
		if err := s.apply(s.def); err != nil {
			panic(fmt.Sprintf("the default of %s: %v", s.env, err)) // a bug in the table
		}
	}
	return c
}

// bind defines on fs the flags of the settings named in only (all when only
// is empty), with their environment variables in the usage text, and
// returns the rows it bound. A flag records its text; parse applies it.
func (c *config) bind(fs *flag.FlagSet, only ...string) []setting {
	var bound []setting
	for _, s := range c.settings() {
		if len(only) > 0 && !slices.Contains(only, s.flag) {
			continue
		}
		isBool := s.def == "true" || s.def == "false"
		fs.Var(&textValue{def: s.def, isBool: isBool}, s.flag, s.usage+" [$"+s.env+"]")
		bound = append(bound, s)
	}
	return bound
}

// parse parses args into fs, takes the environment for every bound setting
// that args did not set (the flag wins), and applies what was given to the
// options. Each error is a usageError naming the setting, or flag.ErrHelp.
func (c *config) parse(fs *flag.FlagSet, bound []setting, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	given := map[string]bool{}
	for _, s := range bound {
		text, set := fs.Lookup(s.flag).Value.(*textValue).given()
		if !set {
			text, set = getenv(s.env), getenv(s.env) != ""
		}
		if !set {
			continue
		}
		given[s.flag] = true
		if err := s.apply(text); err != nil {
			msg := fmt.Sprintf("invalid %s (-%s): %v", s.env, s.flag, err)
			if !s.secret {
				msg += fmt.Sprintf("; got %q", text)
			}
			errs = append(errs, errors.New(msg))
		}
	}
	if len(errs) > 0 {
		return &usageError{errors.Join(errs...).Error()}
	}
	// The token iss is the public URL, which the metadata's issuer is, so
	// that a resource server that discovers the issuer can check iss.
	if !given["jwt-issuer"] && c.http.PublicURL != "" {
		c.auth.Issuer = c.http.PublicURL
	}
	return nil
}

// textValue is a flag that records the text it was given. A boolean one
// may be given without a value (-signup means -signup=true).
type textValue struct {
	def, text   string
	set, isBool bool
}

func (v *textValue) IsBoolFlag() bool { return v.isBool }

func (v *textValue) String() string {
	if v == nil {
		return ""
	}
	return v.def
}

func (v *textValue) Set(s string) error {
	v.text, v.set = s, true
	return nil
}

func (v *textValue) given() (string, bool) { return v.text, v.set }

// The parsers. Each returns an apply function bound to p, whose error says
// what form the text should have.

func stringInto(p *string, check func(string) error) func(string) error {
	return func(s string) error {
		if check != nil {
			if err := check(s); err != nil {
				return err
			}
		}
		*p = s
		return nil
	}
}

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func fileName(s string) error {
	if s == "" || s == ":memory:" {
		return errors.New("must name a file") // every pooled connection would get its own :memory:
	}
	return nil
}

func postgresURL(s string) error {
	if s != "" && !postgres.IsURL(s) {
		return errors.New("want a URL that starts with postgres:// or postgresql://")
	}
	return nil
}

func oneOf(choices ...string) func(string) error {
	return func(s string) error {
		if !slices.Contains(choices, s) {
			return fmt.Errorf("want one of %s", strings.Join(choices, ", "))
		}
		return nil
	}
}

func secretInto(p *[]byte, minLen int) func(string) error {
	return func(s string) error {
		if s != "" && len(s) < minLen {
			return fmt.Errorf("is %d bytes; it must be at least %d", len(s), minLen)
		}
		*p = []byte(s)
		return nil
	}
}

// A duration's lower bound.
const (
	positive    = time.Nanosecond
	notNegative = time.Duration(0)
)

func durationInto(p *time.Duration, min time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("want a duration such as 15m, 90s or 720h")
		}
		if d < min {
			if min == notNegative {
				return errors.New("must not be negative")
			}
			return errors.New("must be positive")
		}
		*p = d
		return nil
	}
}

func intInto(p *int, lo, hi int) func(string) error {
	form := fmt.Sprintf("want an integer %d..%d", lo, hi)
	if hi == math.MaxInt {
		form = fmt.Sprintf("want an integer of at least %d", lo)
	}
	return func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return errors.New(form)
		}
		*p = n
		return nil
	}
}

func int64Into(p *int64) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return errors.New("want a positive integer (bytes)")
		}
		*p = n
		return nil
	}
}

func boolInto(p *bool) func(string) error {
	return func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
		return nil
	}
}

// negatedBoolInto binds a setting that says yes to an option that says no.
func negatedBoolInto(p *bool) func(string) error {
	var b bool
	apply := boolInto(&b)
	return func(s string) error {
		if err := apply(s); err != nil {
			return err
		}
		*p = !b
		return nil
	}
}

func limitInto(p *auth.Limit) func(string) error {
	return func(s string) error {
		l, err := auth.ParseLimit(s)
		if err != nil {
			return err
		}
		*p = l
		return nil
	}
}

// originsInto parses "*" or comma-separated scheme://host[:port].
func originsInto(p *[]string) func(string) error {
	return func(s string) error {
		var out []string
		for o := range strings.SplitSeq(s, ",") {
			o = strings.TrimSpace(o)
			if o != "*" {
				u, err := url.Parse(o)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
					return fmt.Errorf("%q is not an origin: want * or origins such as https://app.example.com", o)
				}
			}
			out = append(out, o)
		}
		*p = out
		return nil
	}
}

// sealerInto makes the Sealer of a key encryption key; empty means none.
func sealerInto(p **auth.Sealer) func(string) error {
	return func(s string) error {
		if s == "" {
			*p = nil
			return nil
		}
		sealer, err := auth.NewSealer([]byte(s))
		if err != nil {
			return fmt.Errorf("is %d bytes; it must be at least %d", len(s), auth.MinKeyEncryptionKeyLen)
		}
		*p = sealer
		return nil
	}
}

// prefixesInto parses comma-separated IP addresses and CIDR prefixes.
func prefixesInto(p *[]netip.Prefix) func(string) error {
	return func(s string) error {
		out := []netip.Prefix{}
		for part := range strings.SplitSeq(s, ",") {
			part = strings.TrimSpace(part)
			prefix, err := netip.ParsePrefix(part)
			if err != nil {
				ip, ipErr := netip.ParseAddr(part)
				if ipErr != nil {
					return fmt.Errorf("%q is not an address or CIDR: want a list such as 127.0.0.1,10.0.0.0/8", part)
				}
				prefix = netip.PrefixFrom(ip, ip.BitLen())
			}
			if prefix.Addr().Is4In6() {
				// The peer is compared in its IPv4 form.
				prefix = netip.PrefixFrom(prefix.Addr().Unmap(), max(0, prefix.Bits()-96))
			}
			out = append(out, prefix.Masked())
		}
		*p = out
		return nil
	}
}

// baseURLInto parses an absolute http(s) URL without query or fragment, and
// drops a trailing slash; empty means none.
func baseURLInto(p *string) func(string) error {
	return func(s string) error {
		if s != "" {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return errors.New("want an absolute http(s) URL without query or fragment, such as https://auth.example.com")
			}
		}
		*p = strings.TrimSuffix(s, "/")
		return nil
	}
}

// usageError is bad input on the command line; the program exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}
