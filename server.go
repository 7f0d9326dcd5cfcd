// Command authql is a GraphQL authentication server: a login mutation and a
// me query beside an OAuth2 token endpoint, over SQLite. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"authql/auth"
	"authql/auth/bcryptpool"
	"authql/db"
	"authql/graph"
	"authql/httpapi"
	"authql/metrics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !isCommand(os.Args) && tuneGC(os.Getenv) { // the process's, so not in run, which tests call
		go followLiveHeap(ctx)
	}
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "authql:", err)
		if _, ok := errors.AsType[*usageError](err); ok {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is the whole program: the server, or with a first argument that is not
// a flag, a CLI command. It returns when ctx is done or on a fatal error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if isCommand(args) {
		return runCommand(ctx, args[1:], getenv, stdin, stdout, stderr)
	}
	cfg := defaultConfig()
	fs := flag.NewFlagSet("authql", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: authql [flags]         serve\n       authql COMMAND [flags]  one of: %s (-h for each)\n\nFlags:\n", commandNames())
		fs.PrintDefaults()
	}
	bound := cfg.bind(fs)
	if err := cfg.parse(fs, bound, args[1:], getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return serve(ctx, cfg, stdout, stderr)
}

// isCommand reports whether args name a CLI command: a first argument that
// is not a flag.
func isCommand(args []string) bool {
	return len(args) > 1 && args[1] != "" && args[1][0] != '-'
}

// serve runs the server, and with METRICS_ADDR the metrics server beside
// it, until ctx is done, then lets requests in flight finish.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	logger := newLogger(cfg.server.logFormat, stderr)
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()

	so := cfg.server
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: so.readHeaderTimeout,
			ReadTimeout:       so.readTimeout,
			WriteTimeout:      so.writeTimeout,
			IdleTimeout:       so.idleTimeout,
			MaxHeaderBytes:    so.maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
	}
	ln, err := net.Listen("tcp", so.addr)
	if err != nil {
		return fmt.Errorf("listen on %s (ADDR): %w", so.addr, err)
	}
	servers := []*http.Server{newServer(a.handler)}
	listeners := []net.Listener{ln}
	// The metrics have a listener of their own, which an operator keeps
	// off the public network: they tell how busy the server is and how
	// logins fare.
	var metricsLn net.Listener
	if a.metrics != nil {
		if metricsLn, err = net.Listen("tcp", so.metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (METRICS_ADDR): %w", so.metricsAddr, err)
		}
		servers = append(servers, newServer(a.metrics))
		listeners = append(listeners, metricsLn)
	}
	fmt.Fprintf(stdout, "authql listening on %s\n", baseURL(ln.Addr()))
	if metricsLn != nil {
		fmt.Fprintf(stdout, "authql metrics on %s/metrics\n", baseURL(metricsLn.Addr()))
	}
	go housekeep(ctx, a.db, a.service, cfg.auth.RefreshTokenTTL, logger)
	go maintainKeys(ctx, a.service, logger)
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	select {
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), so.shutdownTimeout)
	defer cancel()
	logger.Info("shutting down; finishing requests in flight", httpapi.Milliseconds("timeout_ms", so.shutdownTimeout))
	// The public server first: the metrics listener stays up while its
	// requests finish, so that a scrape can watch the drain.
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	logger.Info("stopped")
	return nil
}

// housekeep runs, at start and then hourly until ctx is done, what keeps the
// database and the service in shape: it deletes the sessions that ended
// more than a day ago, with their refresh tokens, and the login addresses
// that no longer count as known; and it reads the stored bcrypt costs
// again, so that a hash the CLI made at a higher cost raises what every
// password check costs (see auth.Service.LoadPasswordCosts).
//
// Rotated refresh tokens older than refreshTTL go too: a replay of one
// that old is no longer told apart from an unknown token (a thief refreshing
// a stolen token for that long is past what theft detection can catch).
func housekeep(ctx context.Context, store db.Database, svc *auth.Service, refreshTTL time.Duration, logger *slog.Logger) {
	// A database that keeps the throttles (PostgreSQL) drops, every minute,
	// the buckets that are full again and those past its bound, so that
	// anonymous requests cannot grow the table.
	throttles, _ := store.(interface {
		PurgeThrottles(ctx context.Context, now time.Time) error
	})
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for minute := 0; ; minute++ {
		now := time.Now()
		if minute%60 == 0 {
			if err := svc.LoadPasswordCosts(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("reading the stored password costs failed", "err", err)
			}
			n, err := store.PurgeSessions(ctx, now.Add(-24*time.Hour), now.Add(-refreshTTL), now.Add(-auth.KnownAddressWindow))
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Warn("purging ended sessions failed", "err", err)
			case n > 0:
				logger.Info("purged ended sessions", "count", n)
			}
		}
		if throttles != nil {
			if err := throttles.PurgeThrottles(ctx, now); err != nil && ctx.Err() == nil {
				logger.Warn("purging throttles failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// maintainKeys reads the signing keys every second until ctx is done, so
// that a key the CLI (or another instance) revoked stops verifying within a
// second, a pending key starts signing and a retired one leaves the JWKS;
// and every minute it rotates the key once it is KEY_ROTATION_INTERVAL old.
// The keys are a few rows: reading them costs next to nothing.
func maintainKeys(ctx context.Context, svc *auth.Service, logger *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		maintain := svc.LoadSigningKeys
		if n%60 == 0 {
			maintain = svc.MaintainSigningKeys
		}
		if err := maintain(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("reading the signing keys failed", "err", err)
		}
	}
}

// baseURL is the URL to open for a listener: localhost when it listens on
// every address.
func baseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// newLogger returns the structured logger, text or JSON, whose lines name
// the request they were logged for.
func newLogger(format string, w io.Writer) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(httpapi.LogHandler(h))
}

// app is authql assembled from a configuration: what serve runs and what the
// tests drive over httptest.
type app struct {
	db      db.Database
	bcrypt  *bcryptpool.Pool
	service *auth.Service
	handler http.Handler
	// metrics serves GET /metrics; nil without METRICS_ADDR, when nothing
	// is measured.
	metrics http.Handler
}

func newApp(ctx context.Context, cfg config, logger *slog.Logger) (*app, error) {
	var m *metrics.Metrics
	if cfg.server.metricsAddr != "" {
		m = metrics.New()
		cfg.store.sqlite.Metrics, cfg.store.postgres.Metrics = m, m
		cfg.pool.metrics, cfg.auth.Metrics, cfg.http.Metrics = m, m, m
	}
	store, pool, svc, err := openService(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	gql := cfg.graph
	gql.Origin, gql.RequestID = httpapi.RequestOrigin, httpapi.RequestID
	edge := cfg.http
	edge.Service, edge.GraphQL, edge.RefuseBearer = svc, graph.NewHandler(svc, logger, gql), graph.WriteAuthError
	edge.Ping, edge.Logger = store.Ping, logger
	handler, err := httpapi.NewHandler(edge)
	if err != nil {
		pool.Close()
		store.Close()
		return nil, err
	}
	a := &app{db: store, bcrypt: pool, service: svc, handler: handler}
	if m != nil {
		now := cfg.auth.Now
		if now == nil {
			now = time.Now
		}
		m.CountSessions(func(ctx context.Context) (int64, error) { return store.CountLiveSessions(ctx, now()) })
		a.metrics = m.Handler(logger)
	}
	return a, nil
}

// Close stops the bcrypt workers and closes the database, once the HTTP
// server has stopped.
func (a *app) Close() error {
	a.bcrypt.Close()
	return a.db.Close()
}

// openService opens the database and builds the server's service over it:
// with the configured JWT secret or the one stored in the database, the
// stored refresh token secret (made on first start), and password checks
// that cost as much as the most expensive stored hash, run on the returned
// bcrypt pool, which the caller closes after the service's last use. It
// records the configured bcrypt cost, which the CLI then hashes at.
func openService(ctx context.Context, cfg config, logger *slog.Logger) (db.Database, *bcryptpool.Pool, *auth.Service, error) {
	if cfg.store.url != "" && cfg.auth.Sealer == nil {
		return nil, nil, nil, errors.New("KEY_ENCRYPTION_KEY is required with DATABASE_URL: every instance " +
			"reads the signing keys the others store, and the database must not hold them in clear; " +
			"give every instance the same key of 32 bytes or more")
	}
	store, err := openDatabase(ctx, cfg.store)
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := bcryptpool.New(cfg.pool.workers, cfg.pool.wait, cfg.pool.metrics)
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	svc, err := func() (*auth.Service, error) {
		sc := cfg.auth
		if len(sc.Secret) == 0 {
			// An earlier version generated and stored an HS256 key: its
			// tokens stay valid until they expire (LoadSigningKeys).
			legacy, err := store.Setting(ctx, legacySecretSetting)
			if err != nil && !errors.Is(err, auth.ErrNotFound) {
				return nil, fmt.Errorf("read the stored JWT secret: %w", err)
			}
			sc.LegacySecret = legacy
		}
		// The refresh token secret is made on first start; sealed with
		// KEY_ENCRYPTION_KEY when there is one.
		stored, err := store.Secret(ctx, refreshSecretSetting, func() []byte {
			secret := auth.GenerateSecret()
			if sc.Sealer != nil {
				return sc.Sealer.Seal(refreshSecretSetting, secret)
			}
			return secret
		})
		if err != nil {
			return nil, fmt.Errorf("read the stored refresh token secret: %w", err)
		}
		refreshSecret, err := auth.Unseal(sc.Sealer, refreshSecretSetting, stored)
		if err != nil {
			return nil, fmt.Errorf("the stored %w", err)
		}
		if err := store.SetSetting(ctx, bcryptCostSetting, []byte(strconv.Itoa(sc.BcryptCost))); err != nil {
			return nil, fmt.Errorf("record the bcrypt cost: %w", err)
		}
		sc.RefreshSecret = refreshSecret
		sc.Logger, sc.BcryptPool = logger, pool
		if throttles, ok := store.(auth.ThrottleStore); ok {
			// Limits count across every instance on the database.
			sc.Throttles = throttles
		}
		svc, err := auth.NewService(store, sc)
		if err != nil {
			return nil, err
		}
		if err := svc.LoadPasswordCosts(ctx); err != nil {
			return nil, err
		}
		if err := svc.LoadSigningKeys(ctx); err != nil {
			return nil, err
		}
		return svc, nil
	}()
	if err != nil {
		pool.Close()
		store.Close()
		return nil, nil, nil, err
	}
	return store, pool, svc, nil
}

// The settings that hold secrets: the HS256 key that an earlier version
// generated and stored, and the secret that rotated refresh tokens derive
// from (sealed with KEY_ENCRYPTION_KEY when there is one).
const (
	legacySecretSetting  = "jwt_secret"
	refreshSecretSetting = "refresh_token_secret"
)

// bcryptCostSetting is the database setting in which the server records its
// BCRYPT_COST, so that users created by the CLI get hashes of the same cost
// (a different cost would tell their hashes apart by timing).
const bcryptCostSetting = "bcrypt_cost"
