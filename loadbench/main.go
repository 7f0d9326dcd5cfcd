// Command loadbench measures authql the way clients load it: it builds the
// real server binary, starts it on a fresh database, and drives it over
// loopback with concurrent keep-alive connections (in the throughput
// phases, a request's bytes written and its answer's read on each, as wrk
// does: rawRequest), in three configurations
// on this machine: SQLite; PostgreSQL served by one instance; and one
// PostgreSQL database served by two instances, each taking half of the
// clients' connections. For each configuration it prints:
//
//   - requests/s and p50/p99 of authenticated { me { id username } } and of
//     anonymous { __typename } on the same servers, and their ratio; and of
//     authenticated { __typename }, which splits that ratio into the cost of
//     the bearer check (token and database read) and of resolving me. The
//     phases alternate in 10 rounds, each phase for a tenth of -duration,
//     so that the machine's swings fall on all of them alike. Beside each,
//     the CPU time the servers and this process (the load) spent per
//     request;
//   - on PostgreSQL, the size of each instance's pool (pool_max_conns) and
//     the connections to the database during the me phase, by state, as
//     pg_stat_activity shows them every 20ms: the maximum and the mean;
//   - the servers' peak RSS.
//
// On SQLite, and with -pg-logins on PostgreSQL too, it also prints:
//
//   - /token (password grant) requests/s at concurrency 16 against the bcrypt
//     bound (CPUs ÷ one bcrypt verification at the configured cost, measured
//     in this run), and their ratio;
//   - me p50/p99 while a login storm (concurrency 64 on /token) runs.
//
// Last, a summary sets side by side, per configuration, the me requests/s,
// p50 and p99 and, on PostgreSQL, the connections' maximum and mean beside
// the pools' total size; and gives the ratios, of requests/s and of p99, of
// two PostgreSQL instances to one and to SQLite.
//
// PostgreSQL is a throwaway cluster that loadbench starts and stops, as the
// tests do (db/pgtest), or the server at -database-url (default
// $AUTHQL_TEST_POSTGRES), on which it creates a database per configuration
// and drops it at the end. -pool sets each instance's pool_max_conns.
//
// With -peer URL, it also measures the FastAPI peer served at URL: the code
// of FastAPI's tutorial on OAuth2 with JWT tokens, loadbench/fastapi/app.py,
// whose comment tells how to install and serve it. First it gets a token
// from URL/token as the tutorial's user johndoe; then, on SQLite, it drives
// GET URL/users/me/ with it as a fourth phase of the rounds (authql's
// servers idle meanwhile, as the peer does during theirs), at the
// concurrency (-c) of authql's me phase, and prints its requests/s, p50
// and p99 and the ratio of authql's me requests/s to the peer's.
// -peer-only measures the peer alone. The README's figures come from
//
//	go run ./loadbench -peer http://127.0.0.1:8000
//
// loadbench/floor serves the peer's endpoints with constants: driven as a
// peer, it gives the floor that Go's net/http and the kernel set under any
// Go server's figure on the machine.
//
// Run it from the repository root: go run ./loadbench
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"authql/db/pgtest"
)

const password = "correct horse battery staple"

func main() {
	// The load's own collector, with its small heap, would otherwise run
	// some 30 times a second and take CPU from the servers measured, as
	// authql's did (gc.go): the same setting for authql and for the peer.
	debug.SetGCPercent(400)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func run() error {
	duration := flag.Duration("duration", 6*time.Second, "length of each throughput phase")
	concurrency := flag.Int("c", 32, "connections for the me and __typename phases, split evenly over the instances")
	cost := flag.Int("bcrypt-cost", 12, "BCRYPT_COST of the server")
	withPG := flag.Bool("postgres", true, "also measure PostgreSQL with one instance and with two")
	databaseURL := flag.String("database-url", "",
		"`URL` (postgres://…) of a PostgreSQL server to create the databases on, as a user allowed to CREATE DATABASE "+
			"(default $"+pgtest.EnvURL+"; if empty too, a throwaway cluster)")
	poolSize := flag.Int("pool", 0, "pool_max_conns of each PostgreSQL instance (0: pgx's default, the larger of 4 and the CPUs)")
	pgLogins := flag.Bool("pg-logins", false, "also run the /token and login storm phases on PostgreSQL (adds about 70s at the default duration)")
	peerURL := flag.String("peer", "", "`URL` of the FastAPI peer (loadbench/fastapi/app.py served by uvicorn, e.g. http://127.0.0.1:8000): "+
		"last, drive its GET /users/me/ as authql's me and compare their requests/s")
	peerOnly := flag.Bool("peer-only", false, "measure only the FastAPI peer at -peer, not authql")
	flag.Parse()
	if *databaseURL == "" { // not the flag's default, which -h would show, password and all
		*databaseURL = os.Getenv(pgtest.EnvURL)
	}
	if *peerOnly && *peerURL == "" {
		return errors.New("-peer-only needs -peer")
	}

	r := &runner{duration: *duration, concurrency: *concurrency, cost: *cost}
	if *peerURL != "" {
		// Before authql's phases, so that a peer not running fails the run
		// at once.
		var err error
		if r.peer, err = newPeer(*peerURL); err != nil {
			return err
		}
	}
	fmt.Printf("authql loadbench: %s, %d CPUs, GOMAXPROCS %d, bcrypt cost %d, %v phases\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOMAXPROCS(0), *cost, *duration)
	if *peerOnly {
		r.measurePeer()
		return nil
	}
	results, err := r.authql(*withPG, *databaseURL, *poolSize, *pgLogins)
	if err != nil {
		return err
	}
	if len(results) > 1 {
		summarize(results)
	}
	return nil
}

// authql measures authql on SQLite and, if withPG, on PostgreSQL with one
// instance and with two, and returns the results in that order.
func (r *runner) authql(withPG bool, databaseURL string, poolSize int, pgLogins bool) ([]*result, error) {
	dir, err := os.MkdirTemp("", "authql-loadbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r.dir, r.bin = dir, filepath.Join(dir, "authql")
	if out, err := exec.Command("go", "build", "-o", r.bin, ".").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	// The database is each configuration's to choose. Every client of the
	// benchmark comes from 127.0.0.1: the per-address limits, meant for
	// attackers, would throttle its signups and logins.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DB_PATH=") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, fmt.Sprintf("BCRYPT_COST=%d", r.cost), "SIGNUP_ADDR_LIMIT=100000/1s", "LOGIN_ADDR_LIMIT=100000/1s")

	// The cluster starts first, so that a PostgreSQL that cannot start fails
	// the run at once; idle, it takes no CPU from the SQLite phases.
	var cluster *pgtest.Cluster
	if withPG {
		if databaseURL != "" {
			cluster, err = pgtest.Existing(databaseURL)
		} else {
			cluster, err = pgtest.Start()
		}
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL: %w (or run with -postgres=false)", err)
		}
		defer cluster.Stop()
	}

	results := []*result{}
	res, err := r.measure(setup{name: "SQLite", key: "sqlite", instances: 1, logins: true, peer: r.peer,
		env: []string{"DB_PATH=" + filepath.Join(dir, "authql.db")}})
	if err != nil {
		return nil, err
	}
	results = append(results, res)
	if cluster == nil {
		return results, nil
	}
	for _, n := range []int{1, 2} {
		// Each configuration gets a database of its own, as empty as SQLite's.
		name := fmt.Sprintf("authql_loadbench_%d_%d", os.Getpid(), n)
		dbURL, err := cluster.CreateDatabase(context.Background(), name)
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL: creating database %s: %w", name, err)
		}
		if databaseURL != "" { // a throwaway cluster goes whole
			defer cluster.DropDatabase(context.Background(), name)
		}
		serverURL, pool, err := poolURL(dbURL, poolSize)
		if err != nil {
			return nil, err
		}
		res, err := r.measure(setup{name: fmt.Sprintf("PostgreSQL ×%d", n), key: fmt.Sprintf("pg%d", n),
			instances: n, dbURL: dbURL, pool: pool, logins: pgLogins,
			env: []string{"DATABASE_URL=" + serverURL, "KEY_ENCRYPTION_KEY=" + kek}})
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

// kek is the KEY_ENCRYPTION_KEY that PostgreSQL requires.
const kek = "loadbench key encryption key of 32 bytes or more"

// poolURL returns dbURL with pool_max_conns n, unless n is 0, and the size
// of the pool that a server given it makes.
func poolURL(dbURL string, n int) (string, int, error) {
	if n > 0 {
		u, err := url.Parse(dbURL)
		if err != nil {
			return "", 0, err
		}
		q := u.Query()
		q.Set("pool_max_conns", strconv.Itoa(n))
		u.RawQuery = q.Encode()
		dbURL = u.String()
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return "", 0, err
	}
	return dbURL, int(cfg.MaxConns), nil
}

// runner starts servers from one binary and measures them.
type runner struct {
	dir, bin    string
	env         []string // of every server, before its configuration's
	duration    time.Duration
	concurrency int
	cost        int
	verify      time.Duration // one bcrypt verification at cost, once measured
	peer        *peer         // the FastAPI peer, if any
}

// setup is a configuration: its database and the instances serving it.
type setup struct {
	name, key string // key names the servers' log files
	env       []string
	instances int
	dbURL     string // PostgreSQL's, to count its connections; "" for SQLite
	pool      int    // PostgreSQL: each instance's pool_max_conns
	logins    bool   // run the /token and login storm phases
	// peer, when not nil, is measured in the same rounds as the GraphQL
	// phases, and authql's me compared with it.
	peer *peer
}

// result is what a configuration measured, for the summary.
type result struct {
	setup
	me    stats
	conns connSampler
}

// measure starts the configuration's servers, drives them through the
// phases, prints what it measured, and stops them.
func (r *runner) measure(s setup) (*result, error) {
	var servers []*server
	defer func() {
		for _, srv := range servers {
			srv.stop()
		}
	}()
	for i := range s.instances {
		// One after the other: the first creates the tables and the keys.
		srv, err := r.start(fmt.Sprintf("%s-%d", s.key, i), s.env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		servers = append(servers, srv)
	}
	b := &bench{client: newClient()}
	defer b.client.CloseIdleConnections()
	for _, srv := range servers {
		b.bases = append(b.bases, srv.base)
	}
	users := 1
	if s.logins {
		users = stormUsers
	}
	if err := b.signup(users); err != nil {
		return nil, err
	}
	token, err := b.login(loginForm("bench0"))
	if err != nil {
		return nil, err
	}
	anonReq := b.graphql(`{"query":"{ __typename }"}`, "")
	authReq := b.graphql(`{"query":"{ __typename }"}`, token)
	meReq := b.graphql(`{"query":"{ me { id username } }"}`, token)
	for _, req := range []*rawRequest{anonReq, authReq, meReq} {
		defer req.close()
		for i := range b.bases { // check on every instance
			if err := req.do(i); err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	anon, authTypename, me := anonReq.do, authReq.do, meReq.do
	// Fill the pools and the statement caches before measuring.
	drive(me, r.concurrency, 300*time.Millisecond)
	if s.peer != nil {
		// Open its connections and warm its workers, likewise.
		s.peer.balance(r.concurrency)
		defer s.peer.usersMe.close()
	}

	var sampler connSampler
	if s.dbURL != "" {
		conn, err := pgx.Connect(context.Background(), s.dbURL)
		if err != nil {
			return nil, fmt.Errorf("%s: connecting to count connections: %w", s.name, err)
		}
		defer conn.Close(context.Background())
		sampler.conn = conn
	}

	var pids []int
	for _, srv := range servers {
		pids = append(pids, srv.cmd.Process.Pid)
	}
	phase := func(req request) stats {
		return measureCPU(pids, func() stats { return drive(req, r.concurrency, r.duration/rounds) })
	}
	// Alternate the phases in rounds, so that all see the same noise.
	var anonStats, authStats, meStats, peerStats stats
	for range rounds {
		anonStats.add(phase(anon))
		authStats.add(phase(authTypename))
		if err := sampler.during(func() { meStats.add(phase(me)) }); err != nil {
			return nil, fmt.Errorf("%s: counting connections: %w", s.name, err)
		}
		if s.peer != nil { // authql's servers idle meanwhile
			peerStats.add(measureCPU(s.peer.pids, func() stats { return drive(s.peer.usersMe.do, r.concurrency, r.duration/rounds) }))
		}
	}
	fmt.Printf("\n== %s: %s ==\n", s.name, s.describe())
	printHeader()
	anonStats.print(fmt.Sprintf("anonymous { __typename } c=%d", r.concurrency))
	authStats.print(fmt.Sprintf("authenticated __typename c=%d", r.concurrency))
	meStats.print(fmt.Sprintf("authenticated me c=%d", r.concurrency))
	fmt.Printf("  ratio me / anonymous: %.2f (target >= 0.85)\n", meStats.rps()/anonStats.rps())
	fmt.Printf("    = bearer check (authenticated / anonymous __typename) %.2f (target >= 0.90)\n", authStats.rps()/anonStats.rps())
	fmt.Printf("    × resolving me (me / authenticated __typename) %.2f\n", meStats.rps()/authStats.rps())
	if s.dbURL != "" {
		fmt.Printf("  PostgreSQL connections during me, pool_max_conns %d per instance (%d in all):\n    %s\n",
			s.pool, s.pool*s.instances, &sampler)
	}
	if s.peer != nil {
		peerStats.print(fmt.Sprintf("FastAPI peer GET /users/me/ c=%d", r.concurrency))
		fmt.Printf("  ratio authql me / FastAPI /users/me/: %.1f× (target >= 4×)\n", meStats.rps()/peerStats.rps())
	}

	if s.logins {
		if r.verify == 0 {
			r.verify = measureBcrypt(r.cost)
		}
		bound := float64(runtime.NumCPU()) / r.verify.Seconds()
		fmt.Println()
		tokenStats := drive(b.logins(), 16, 2*r.duration)
		tokenStats.print("/token password grant c=16")
		fmt.Printf("  bcrypt verify at cost %d: %v; bound %d CPUs / verify = %.1f/s\n", r.cost, r.verify.Round(time.Millisecond), runtime.NumCPU(), bound)
		fmt.Printf("  ratio /token / bound: %.2f (target >= 0.95)\n\n", tokenStats.rps()/bound)

		storm := stormWhile(b.logins(), 64, func() stats { return drive(me, 4, 2*r.duration) })
		storm.me.print("me c=4 during a login storm")
		storm.logins.print("  the storm: /token c=64")
		fmt.Printf("  me p99 during the storm: %v (target <= 25ms)\n", storm.me.pct(0.99).Round(100*time.Microsecond))
	}

	var rss []string
	for _, srv := range servers {
		n, err := peakRSS(srv.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		rss = append(rss, fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)))
	}
	fmt.Printf("\nserver peak RSS: %s (target <= 64 MiB each)\n", strings.Join(rss, ", "))
	return &result{setup: s, me: meStats, conns: sampler}, nil
}

// peer is the FastAPI peer, loadbench/fastapi/app.py, at base.
type peer struct {
	base    string
	b       *bench
	usersMe *rawRequest // GET /users/me/ as the tutorial's user johndoe
	// pids are the processes serving it (uvicorn and its workers), whose
	// CPU time is measured; none if they could not be found.
	pids []int
}

// newPeer gets a token from the peer at base and checks that /users/me/
// takes it.
func newPeer(base string) (*peer, error) {
	base = strings.TrimSuffix(base, "/")
	p := &peer{base: base, b: &bench{client: newClient(), bases: []string{base}}}
	defer p.b.client.CloseIdleConnections() // idle until measured
	if u, err := url.Parse(base); err == nil {
		if port, err := strconv.Atoi(u.Port()); err == nil {
			p.pids = listeners(port)
		}
	}
	if len(p.pids) == 0 {
		fmt.Printf("(no process of this machine found listening at %s that loadbench may read: "+
			"the peer's CPU is not measured, nor its workers' share of the connections checked)\n", base)
	}
	token, err := p.b.login(url.Values{"username": {"johndoe"}, "password": {"secret"}}.Encode())
	if err != nil {
		return nil, fmt.Errorf("FastAPI peer at %s: %w", base, err)
	}
	p.usersMe = newRawRequest(p.b.bases, http.MethodGet, "/users/me/", http.Header{"Authorization": {"Bearer " + token}}, "",
		func(status int, out []byte) error {
			if status != 200 || !bytes.Contains(out, []byte(`"username":"johndoe"`)) {
				return fmt.Errorf("%d %s", status, out)
			}
			return nil
		})
	if err := p.usersMe.do(0); err != nil {
		return nil, fmt.Errorf("FastAPI peer at %s: /users/me/: %w", base, err)
	}
	return p, nil
}

// balance opens c connections to the peer and warms its workers, so that
// the workers share the connections. uvicorn's workers accept from one
// socket, and the quickest can take most of a burst of new connections,
// leaving the other CPU idle: the peer then measured half its capacity (4,600
// against 9,700 requests/s). It drives the peer for 300ms, and while one
// of its two busiest processes spent less than a third of their CPU time,
// opens the connections again, up to 20 times, and says so if it never
// got a balance. A peer of one process needs none.
func (p *peer) balance(c int) {
	for try := 0; ; try++ {
		before := make([]time.Duration, len(p.pids))
		for i, pid := range p.pids {
			before[i] = processCPU([]int{pid})
		}
		drive(p.usersMe.do, c, 300*time.Millisecond)
		var spent []time.Duration
		for i, pid := range p.pids {
			if after := processCPU([]int{pid}); after >= 0 && before[i] >= 0 {
				spent = append(spent, after-before[i])
			}
		}
		slices.Sort(spent)
		if len(spent) < 2 {
			return
		}
		top, second := spent[len(spent)-1], spent[len(spent)-2]
		if 3*second >= top+second {
			return
		}
		if try == 20 {
			fmt.Printf("(the peer's workers did not share its connections: %v and %v of CPU in 300ms)\n", top, second)
			return
		}
		p.usersMe.close()
	}
}

// measurePeer measures the peer alone (-peer-only): its GET /users/me/ at
// the concurrency and for the length of authql's me phase.
func (r *runner) measurePeer() {
	defer r.peer.usersMe.close()
	// Open the connections and warm the workers before measuring, as for
	// authql.
	r.peer.balance(r.concurrency)
	peerStats := measureCPU(r.peer.pids, func() stats { return drive(r.peer.usersMe.do, r.concurrency, r.duration) })

	fmt.Printf("\n== FastAPI peer at %s: loadbench/fastapi/app.py ==\n", r.peer.base)
	printHeader()
	peerStats.print(fmt.Sprintf("GET /users/me/ c=%d", r.concurrency))
}

func (s setup) describe() string {
	if s.instances == 1 {
		return "one instance"
	}
	return fmt.Sprintf("%d instances on one database, each taking 1/%d of the connections", s.instances, s.instances)
}

// summarize prints the me phase of every configuration side by side, and
// the ratios of two PostgreSQL instances to one and to SQLite.
func summarize(results []*result) {
	fmt.Printf("\n== summary: authenticated me ==\n%-34s %10s %9s %9s   %s\n",
		"configuration", "req/s", "p50", "p99", "PostgreSQL connections: max, mean (pool)")
	byKey := map[string]stats{}
	for _, r := range results {
		conns := "-"
		if r.dbURL != "" {
			top, mean := r.conns.stats()
			conns = fmt.Sprintf("%d, %.1f (%d)", top.total, mean[0], r.pool*r.instances)
		}
		fmt.Printf("%-34s %10.1f %9v %9v   %s\n", r.name, r.me.rps(),
			r.me.pct(0.50).Round(10*time.Microsecond), r.me.pct(0.99).Round(10*time.Microsecond), conns)
		byKey[r.key] = r.me
	}
	ratio := func(name, a, b string) {
		x, y := byKey[a], byKey[b]
		fmt.Printf("  %s: req/s %.2f, p99 %.2f\n", name, x.rps()/y.rps(),
			float64(x.pct(0.99))/float64(y.pct(0.99)))
	}
	ratio("PostgreSQL ×2 / PostgreSQL ×1", "pg2", "pg1")
	ratio("PostgreSQL ×2 / SQLite", "pg2", "sqlite")
}

// server is a running instance of authql.
type server struct {
	cmd  *exec.Cmd
	base string
}

// start starts an instance of the binary with env added to r.env, logging
// to name.log, and returns once it listens.
func (r *runner) start(name string, env []string) (*server, error) {
	cmd := exec.Command(r.bin, "-addr", "127.0.0.1:0", "-log-format", "json")
	cmd.Env = append(slices.Clone(r.env), env...)
	// One log line per request, to a file, as a server writes them; read
	// through a pipe, they would cost this process CPU the server's
	// clients do not spend.
	logPath := filepath.Join(r.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the server has its own copy
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv := &server{cmd: cmd}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		srv.stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("server did not start: %v\n%s", err, log[max(0, len(log)-2000):])
	}
	srv.base = strings.TrimPrefix(strings.TrimSpace(line), "authql listening on ")
	return srv, nil
}

func (s *server) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// connSampler counts the connections to the database of conn, by state.
type connSampler struct {
	conn    *pgx.Conn // nil for SQLite: nothing to count
	samples []connCount
}

type connCount struct{ total, active, idle int }

// during runs f while it counts the connections every 20ms.
func (s *connSampler) during(f func()) error {
	if s.conn == nil {
		f()
		return nil
	}
	stop, done := make(chan struct{}), make(chan error)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			// Not with a context that f's end cancels: pgx closes a
			// connection whose query is cancelled.
			var c connCount
			err := s.conn.QueryRow(context.Background(), `
				SELECT count(*), count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE state = 'idle')
				FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
			).Scan(&c.total, &c.active, &c.idle)
			if err != nil {
				done <- err
				return
			}
			s.samples = append(s.samples, c)
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	return <-done
}

// stats returns the maximum of each count, and the means of the total,
// the active and the idle.
func (s *connSampler) stats() (top connCount, mean [3]float64) {
	for _, c := range s.samples {
		top = connCount{max(top.total, c.total), max(top.active, c.active), max(top.idle, c.idle)}
		mean[0] += float64(c.total)
		mean[1] += float64(c.active)
		mean[2] += float64(c.idle)
	}
	for i := range mean {
		mean[i] /= float64(max(1, len(s.samples)))
	}
	return top, mean
}

func (s *connSampler) String() string {
	top, mean := s.stats()
	return fmt.Sprintf("max %d (active %d, idle %d), mean %.2f (active %.2f, idle %.2f), %d samples",
		top.total, top.active, top.idle, mean[0], mean[1], mean[2], len(s.samples))
}

// newClient returns the client of a configuration's requests, which keeps
// a connection alive for each of its goroutines.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true,
	}}
}

// bench sends requests to the instances of a configuration.
type bench struct {
	client *http.Client
	bases  []string
}

// A request is sent by worker (a goroutine of driveUntil) to the instance
// worker % instances: the client load splits evenly, each worker keeping
// its connection to one instance.
type request func(worker int) error

func (b *bench) base(worker int) string { return b.bases[worker%len(b.bases)] }

// graphql returns a request posting body to /query, with token as its
// bearer token unless it is empty, that fails unless answered 200 without
// errors. The caller closes it.
func (b *bench) graphql(body, token string) *rawRequest {
	header := http.Header{"Content-Type": {"application/json"}}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	return newRawRequest(b.bases, http.MethodPost, "/query", header, body, func(status int, out []byte) error {
		if status != 200 || bytes.Contains(out, []byte(`"errors"`)) {
			return fmt.Errorf("%d %s", status, out)
		}
		return nil
	})
}

// stormUsers is how many users log in during the /token phases: a storm
// comes from many users, and each username may have only a few attempts
// in flight (login throttling).
const stormUsers = 64

func loginForm(username string) string {
	return url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}.Encode()
}

// signup creates users bench0 … bench(n-1), a few at a time.
func (b *bench) signup(n int) error {
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"query":"mutation($u: String!, $p: String!) { signup(input: {username: $u, password: $p}) { accessToken } }","variables":{"u":"bench%d","p":%q}}`, i, password)
			req := b.graphql(body, "")
			defer req.close()
			errs <- req.do(i)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			return fmt.Errorf("signup: %w", err)
		}
	}
	return nil
}

// logins returns a request that logs the users in in turn; a 503 (the
// bcrypt bound) is an error.
func (b *bench) logins() request {
	var next atomic.Int64
	return func(worker int) error {
		form := loginForm(fmt.Sprintf("bench%d", next.Add(1)%stormUsers))
		resp, err := b.client.Post(b.base(worker)+"/token", "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			// Back off as the server asks, as a well-behaved client does.
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				time.Sleep(time.Duration(min(s, 5)) * time.Second)
			}
			return fmt.Errorf("/token: %d", resp.StatusCode)
		}
		return nil
	}
}

// login posts form to the first instance's /token and returns the access
// token it grants.
func (b *bench) login(form string) (string, error) {
	resp, err := b.client.Post(b.bases[0]+"/token", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("login: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// stats are the latencies of the successful requests of a phase.
type stats struct {
	ok      []time.Duration
	errors  int
	elapsed time.Duration
	lastErr error
	// serverCPU is the CPU time, user and system, the servers spent
	// meanwhile, when known; loadCPU, this process's, the load's.
	serverCPU, loadCPU time.Duration
}

func (s *stats) add(o stats) {
	s.ok = append(s.ok, o.ok...)
	s.errors += o.errors
	s.elapsed += o.elapsed
	s.serverCPU += o.serverCPU
	s.loadCPU += o.loadCPU
	if o.lastErr != nil {
		s.lastErr = o.lastErr
	}
}

func (s stats) rps() float64 { return float64(len(s.ok)) / s.elapsed.Seconds() }

func (s stats) pct(p float64) time.Duration {
	if len(s.ok) == 0 {
		return 0
	}
	sorted := slices.Clone(s.ok)
	slices.Sort(sorted)
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// perRequest is d per answered request, in µs, or "-" when d is unknown.
func (s stats) perRequest(d time.Duration) string {
	if d == 0 || len(s.ok) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1e3/float64(len(s.ok)))
}

// printHeader heads the lines of stats.print.
func printHeader() {
	fmt.Printf("%-34s %10s %9s %9s %7s %12s %10s\n", "phase", "req/s", "p50", "p99", "errors", "server CPU", "load CPU")
	fmt.Printf("%-34s %10s %9s %9s %7s %12s %10s\n", "", "", "", "", "", "µs/req", "µs/req")
}

func (s stats) print(name string) {
	fmt.Printf("%-34s %10.1f %9v %9v %7d %12s %10s\n", name, s.rps(),
		s.pct(0.50).Round(10*time.Microsecond), s.pct(0.99).Round(10*time.Microsecond), s.errors,
		s.perRequest(s.serverCPU), s.perRequest(s.loadCPU))
	if s.lastErr != nil && s.errors > 0 {
		fmt.Printf("  last error: %.120v\n", s.lastErr)
	}
}

// rounds is how many times the GraphQL phases (and the peer's) alternate,
// each for duration/rounds: short slices, so that the machine's slow swings
// fall on every phase alike.
const rounds = 10

// measureCPU runs f and adds to its stats the CPU time that the processes
// pids (the servers) and this one (the load) spent meanwhile; the servers'
// stays unknown (0) if one of them could not be read.
func measureCPU(pids []int, f func() stats) stats {
	server0, load0 := processCPU(pids), selfCPU()
	s := f()
	server1 := processCPU(pids)
	if server0 >= 0 && server1 >= 0 {
		s.serverCPU = server1 - server0
	}
	s.loadCPU = selfCPU() - load0
	return s
}

// processCPU is the CPU time, user and system, that the processes pids
// have spent, from /proc/PID/stat (utime and stime, in the kernel's
// USER_HZ ticks of 10ms); -1 if a process could not be read.
func processCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// The fields after the command, which is in parentheses and may
		// hold spaces: state is field 3, utime 14 and stime 15.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) < 13 {
			return -1
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		total += time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return total
}

// listeners returns the processes that hold a listening TCP socket on
// port: the server, and the workers that share its socket (uvicorn's). It
// reads /proc (Linux), and finds none where it may not read another
// process's descriptors.
func listeners(port int) []int {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(table)
		for line := range strings.Lines(string(b)) {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			if _, hexPort, ok := strings.Cut(f[1], ":"); ok {
				if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
					inodes["socket:["+f[9]+"]"] = true
				}
			}
		}
	}
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, proc := range procs {
		pid, err := strconv.Atoi(proc.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[target] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// selfCPU is the CPU time, user and system, this process has spent.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drive runs req from c goroutines for d.
func drive(req request, c int, d time.Duration) stats {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return driveUntil(ctx, req, c)
}

// driveUntil runs req from c goroutines until ctx is done. A failed request
// is followed by a millisecond's pause, so that fast failures (503) do not
// spin.
func driveUntil(ctx context.Context, req request, c int) stats {
	results := make([]stats, c)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				if err := req(i); err != nil {
					results[i].errors++
					results[i].lastErr = err
					time.Sleep(time.Millisecond)
					continue
				}
				results[i].ok = append(results[i].ok, time.Since(t))
			}
		})
	}
	wg.Wait()
	var all stats
	for _, r := range results {
		all.add(r)
	}
	all.elapsed = time.Since(start)
	return all
}

type stormResult struct{ me, logins stats }

// stormWhile runs login from c goroutines while measure runs.
func stormWhile(login request, c int, measure func() stats) stormResult {
	done := make(chan stats)
	stop := make(chan struct{})
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-stop; cancel() }()
		done <- driveUntil(ctx, login, c)
	}()
	time.Sleep(500 * time.Millisecond) // let the storm build
	me := measure()
	close(stop)
	return stormResult{me: me, logins: <-done}
}

// measureBcrypt returns the mean time of one bcrypt verification at cost.
func measureBcrypt(cost int) time.Duration {
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), cost)
	const n = 6
	start := time.Now()
	for range n {
		bcrypt.CompareHashAndPassword(hash, []byte(password))
	}
	return time.Since(start) / n
}

// peakRSS reads VmHWM, the peak resident set size, of process pid.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}
