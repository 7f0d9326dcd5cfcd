package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"authql/auth"
	"authql/db"
)

// config is every setting of the README's configuration tables.
type config struct {
	addr        string
	dbPath      string
	jwtSecret   string
	jwtIssuer   string
	jwtAudience string
	accessTTL   time.Duration
	refreshTTL  time.Duration
	reuseGrace  time.Duration
	bcryptCost  int
	signup      bool
	corsOrigins string
	publicURL   string
	logFormat   string
	clientIPHdr string

	loginUserLimit    auth.Limit
	loginPairLimit    auth.Limit
	loginAddrLimit    auth.Limit
	clientAuthLimit   auth.Limit
	signupAddrLimit   auth.Limit
	bcryptConcurrency int
	bcryptWait        time.Duration
	maxQueryBytes     int64
	maxHeaderBytes    int
	maxQueryDepth     int
	maxComplexity     int
	maxAliases        int
	introspection     bool
	playground        bool
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	shutdownTimeout   time.Duration

	// Not settings: tests replace these.
	now    func() time.Time
	dbOpts db.Options
}

// defaultConfig returns the configuration with every setting at its default.
func defaultConfig() config {
	var c config
	c.bind(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// setting ties a flag to its environment variable.
type setting struct {
	env, flag string
	define    func(fs *flag.FlagSet)
}

func (c *config) settings() []setting {
	return []setting{
		{"ADDR", "addr", func(fs *flag.FlagSet) { fs.StringVar(&c.addr, "addr", ":8080", "listen `address`") }},
		{"DB_PATH", "db", func(fs *flag.FlagSet) {
			fs.StringVar(&c.dbPath, "db", "authql.db", "SQLite `file` (created and migrated on start)")
		}},
		{"JWT_SECRET", "jwt-secret", func(fs *flag.FlagSet) {
			fs.StringVar(&c.jwtSecret, "jwt-secret", "", "HS256 `key`, at least 32 bytes (default: generated once, stored in the database)")
		}},
		{"JWT_ISSUER", "jwt-issuer", func(fs *flag.FlagSet) {
			fs.StringVar(&c.jwtIssuer, "jwt-issuer", "authql", "iss claim, checked on every token")
		}},
		{"JWT_AUDIENCE", "jwt-audience", func(fs *flag.FlagSet) {
			fs.StringVar(&c.jwtAudience, "jwt-audience", "", "aud claim when set, checked on every token")
		}},
		{"ACCESS_TOKEN_TTL", "access-token-ttl", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.accessTTL, "access-token-ttl", 15*time.Minute, "access token lifetime")
		}},
		{"REFRESH_TOKEN_TTL", "refresh-token-ttl", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.refreshTTL, "refresh-token-ttl", 720*time.Hour, "refresh token and session lifetime")
		}},
		{"BCRYPT_COST", "bcrypt-cost", func(fs *flag.FlagSet) {
			fs.IntVar(&c.bcryptCost, "bcrypt-cost", 12, "bcrypt cost for new password hashes (4..31)")
		}},
		{"SIGNUP", "signup", func(fs *flag.FlagSet) {
			fs.BoolVar(&c.signup, "signup", true, "whether the signup mutation is open")
		}},
		{"REFRESH_REUSE_GRACE", "refresh-reuse-grace", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.reuseGrace, "refresh-reuse-grace", 10*time.Second, "window in which a replayed refresh token is not treated as theft")
		}},
		{"CORS_ORIGINS", "cors-origins", func(fs *flag.FlagSet) {
			fs.StringVar(&c.corsOrigins, "cors-origins", "*", "comma-separated allowed browser `origins`")
		}},
		{"PUBLIC_URL", "public-url", func(fs *flag.FlagSet) {
			fs.StringVar(&c.publicURL, "public-url", "", "base `URL` of the server in the OAuth2 metadata (default: from each request)")
		}},
		{"LOG_FORMAT", "log-format", func(fs *flag.FlagSet) {
			fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
		}},
		{"CLIENT_IP_HEADER", "client-ip-header", func(fs *flag.FlagSet) {
			fs.StringVar(&c.clientIPHdr, "client-ip-header", "", "`header` in which a trusted proxy puts the client address, e.g. X-Forwarded-For (default: the connection's address)")
		}},
		{"LOGIN_USER_LIMIT", "login-user-limit", func(fs *flag.FlagSet) {
			c.loginUserLimit = auth.DefaultLoginUserLimit
			fs.Var(limitFlag{&c.loginUserLimit}, "login-user-limit", "failed logins allowed per username from addresses it did not log in from in 30 days, as `N/duration`")
		}},
		{"LOGIN_USER_ADDR_LIMIT", "login-user-addr-limit", func(fs *flag.FlagSet) {
			c.loginPairLimit = auth.DefaultLoginPairLimit
			fs.Var(limitFlag{&c.loginPairLimit}, "login-user-addr-limit", "failed logins allowed per username and client address, as `N/duration`")
		}},
		{"LOGIN_ADDR_LIMIT", "login-addr-limit", func(fs *flag.FlagSet) {
			c.loginAddrLimit = auth.DefaultLoginAddrLimit
			fs.Var(limitFlag{&c.loginAddrLimit}, "login-addr-limit", "failed logins and client authentications allowed per client address, as `N/duration`")
		}},
		{"CLIENT_AUTH_LIMIT", "client-auth-limit", func(fs *flag.FlagSet) {
			c.clientAuthLimit = auth.DefaultClientAuthLimit
			fs.Var(limitFlag{&c.clientAuthLimit}, "client-auth-limit", "failed client authentications allowed per client id, as `N/duration`")
		}},
		{"SIGNUP_ADDR_LIMIT", "signup-addr-limit", func(fs *flag.FlagSet) {
			c.signupAddrLimit = auth.DefaultSignupAddrLimit
			fs.Var(limitFlag{&c.signupAddrLimit}, "signup-addr-limit", "signups allowed per client address, as `N/duration`")
		}},
		{"BCRYPT_CONCURRENCY", "bcrypt-concurrency", func(fs *flag.FlagSet) {
			fs.IntVar(&c.bcryptConcurrency, "bcrypt-concurrency", runtime.NumCPU(), "bcrypt operations allowed at once (default: the number of CPUs)")
		}},
		{"BCRYPT_WAIT", "bcrypt-wait", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.bcryptWait, "bcrypt-wait", time.Second, "how long a login waits for a bcrypt slot before 503")
		}},
		{"MAX_QUERY_BYTES", "max-query-bytes", func(fs *flag.FlagSet) {
			fs.Int64Var(&c.maxQueryBytes, "max-query-bytes", 128<<10, "largest /query request body")
		}},
		{"MAX_HEADER_BYTES", "max-header-bytes", func(fs *flag.FlagSet) {
			fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", 16<<10, "largest request header block")
		}},
		{"MAX_QUERY_DEPTH", "max-query-depth", func(fs *flag.FlagSet) {
			fs.IntVar(&c.maxQueryDepth, "max-query-depth", 8, "deepest GraphQL selection nesting")
		}},
		{"MAX_QUERY_COMPLEXITY", "max-query-complexity", func(fs *flag.FlagSet) {
			fs.IntVar(&c.maxComplexity, "max-query-complexity", 300, "most fields one GraphQL operation may resolve")
		}},
		{"MAX_ALIASES", "max-aliases", func(fs *flag.FlagSet) {
			fs.IntVar(&c.maxAliases, "max-aliases", 30, "most aliased fields in one GraphQL operation")
		}},
		{"INTROSPECTION", "introspection", func(fs *flag.FlagSet) {
			fs.BoolVar(&c.introspection, "introspection", true, "whether GraphQL introspection is allowed")
		}},
		{"PLAYGROUND", "playground", func(fs *flag.FlagSet) {
			fs.BoolVar(&c.playground, "playground", true, "whether GET / serves the GraphQL playground")
		}},
		{"READ_HEADER_TIMEOUT", "read-header-timeout", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 5*time.Second, "time allowed to send request headers")
		}},
		{"READ_TIMEOUT", "read-timeout", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.readTimeout, "read-timeout", 15*time.Second, "time allowed to send a whole request")
		}},
		{"WRITE_TIMEOUT", "write-timeout", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.writeTimeout, "write-timeout", 30*time.Second, "time allowed to answer a request")
		}},
		{"IDLE_TIMEOUT", "idle-timeout", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.idleTimeout, "idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
		}},
		{"SHUTDOWN_TIMEOUT", "shutdown-timeout", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long SIGTERM waits for requests in flight")
		}},
	}
}

// limitFlag is an auth.Limit as a flag value.
type limitFlag struct{ l *auth.Limit }

func (f limitFlag) String() string {
	if f.l == nil {
		return ""
	}
	return f.l.String()
}

func (f limitFlag) Set(s string) error {
	l, err := auth.ParseLimit(s)
	if err == nil {
		*f.l = l
	}
	return err
}

// bind defines the flags named in only (all when only is empty) on fs, with
// their environment variables in the usage text.
func (c *config) bind(fs *flag.FlagSet, only ...string) []setting {
	var bound []setting
	for _, s := range c.settings() {
		if len(only) > 0 && !slices.Contains(only, s.flag) {
			continue
		}
		s.define(fs)
		f := fs.Lookup(s.flag)
		f.Usage += " [$" + s.env + "]"
		bound = append(bound, s)
	}
	return bound
}

// parse parses args into fs, then applies the environment to every bound
// setting that args did not set (the flag wins), then checks the values. Each
// error is a usageError naming the setting at fault, or flag.ErrHelp.
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
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	for _, s := range bound {
		v := getenv(s.env)
		if onCommandLine[s.flag] || v == "" {
			continue
		}
		if err := fs.Set(s.flag, v); err != nil {
			return usageErrorf("invalid %s %q: %v", s.env, v, err)
		}
	}
	if err := c.validate(bound); err != nil {
		return &usageError{err.Error()}
	}
	return nil
}

// validate checks the values flag parsing cannot.
func (c *config) validate(bound []setting) error {
	var errs []error
	bad := func(flagName, format string, args ...any) {
		for _, s := range bound {
			if s.flag == flagName {
				errs = append(errs, fmt.Errorf("invalid %s (-%s): %s", s.env, s.flag, fmt.Sprintf(format, args...)))
			}
		}
	}
	if c.addr == "" {
		bad("addr", "must not be empty")
	}
	if c.dbPath == "" || c.dbPath == ":memory:" {
		bad("db", "must name a file")
	}
	if c.jwtSecret != "" && len(c.jwtSecret) < auth.MinSecretLen {
		bad("jwt-secret", "is %d bytes; it must be at least %d", len(c.jwtSecret), auth.MinSecretLen)
	}
	if c.jwtIssuer == "" {
		bad("jwt-issuer", "must not be empty")
	}
	if c.accessTTL <= 0 {
		bad("access-token-ttl", "must be positive")
	}
	if c.refreshTTL <= 0 {
		bad("refresh-token-ttl", "must be positive")
	}
	if c.reuseGrace < 0 {
		bad("refresh-reuse-grace", "must not be negative")
	}
	if c.bcryptCost < 4 || c.bcryptCost > 31 {
		bad("bcrypt-cost", "is %d; it must be 4..31", c.bcryptCost)
	}
	if _, err := c.origins(); err != nil {
		bad("cors-origins", "%v", err)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		bad("log-format", "is %q; it must be text or json", c.logFormat)
	}
	positive := map[string]int64{
		"bcrypt-concurrency": int64(c.bcryptConcurrency), "max-query-bytes": c.maxQueryBytes,
		"max-header-bytes": int64(c.maxHeaderBytes), "max-query-depth": int64(c.maxQueryDepth),
		"max-query-complexity": int64(c.maxComplexity), "max-aliases": int64(c.maxAliases),
		"read-header-timeout": int64(c.readHeaderTimeout), "read-timeout": int64(c.readTimeout),
		"write-timeout": int64(c.writeTimeout), "idle-timeout": int64(c.idleTimeout),
		"shutdown-timeout": int64(c.shutdownTimeout), "bcrypt-wait": int64(c.bcryptWait),
	}
	for name, v := range positive {
		if v <= 0 {
			bad(name, "must be positive")
		}
	}
	if u, err := url.Parse(c.publicURL); c.publicURL != "" &&
		(err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "") {
		bad("public-url", "%q is not an absolute http(s) URL without query or fragment", c.publicURL)
	}
	return errors.Join(errs...)
}

// origins parses CORS_ORIGINS: "*" or comma-separated scheme://host[:port].
func (c *config) origins() ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(c.corsOrigins, ",") {
		o = strings.TrimSpace(o)
		if o == "*" {
			out = append(out, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("%q is not an origin such as https://app.example.com", o)
		}
		out = append(out, o)
	}
	return out, nil
}

func (c *config) serviceConfig(secret, refreshSecret []byte) auth.Config {
	return auth.Config{
		Secret:            secret,
		RefreshSecret:     refreshSecret,
		Issuer:            c.jwtIssuer,
		Audience:          c.jwtAudience,
		AccessTokenTTL:    c.accessTTL,
		RefreshTokenTTL:   c.refreshTTL,
		RefreshReuseGrace: c.reuseGrace,
		BcryptCost:        c.bcryptCost,
		LoginUserLimit:    c.loginUserLimit,
		LoginPairLimit:    c.loginPairLimit,
		LoginAddrLimit:    c.loginAddrLimit,
		ClientAuthLimit:   c.clientAuthLimit,
		SignupAddrLimit:   c.signupAddrLimit,
		SignupClosed:      !c.signup,
		Now:               c.now,
	}
}

// usageError is bad input on the command line; the program exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}
