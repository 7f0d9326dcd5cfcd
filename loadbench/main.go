// Command loadbench measures authql the way clients load it: it builds and
// starts the real server binary on a fresh database, drives it over
// loopback with concurrent keep-alive connections, and prints, from one run:
//
//   - requests/s and p50/p99 of authenticated { me { id username } } and of
//     anonymous { __typename } on the same server, and their ratio; and of
//     authenticated { __typename }, which splits that ratio into the cost of
//     the bearer check (token and database read) and of resolving me;
//   - /token (password grant) requests/s at concurrency 16 against the bcrypt
//     bound (CPUs ÷ one bcrypt verification at the configured cost, measured
//     in this run), and their ratio;
//   - me p50/p99 while a login storm (concurrency 64 on /token) runs;
//   - the server's peak RSS.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const password = "correct horse battery staple"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func run() error {
	duration := flag.Duration("duration", 6*time.Second, "length of each throughput phase")
	concurrency := flag.Int("c", 32, "connections for the me and __typename phases")
	cost := flag.Int("bcrypt-cost", 12, "BCRYPT_COST of the server")
	flag.Parse()

	dir, err := os.MkdirTemp("", "authql-loadbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "authql")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	// Every client of the benchmark comes from 127.0.0.1: the per-address
	// limits, meant for attackers, would throttle its signups and logins.
	env := append(os.Environ(), "DB_PATH="+filepath.Join(dir, "authql.db"), fmt.Sprintf("BCRYPT_COST=%d", *cost),
		"SIGNUP_ADDR_LIMIT=100000/1s", "LOGIN_ADDR_LIMIT=100000/1s")

	srv := exec.Command(bin, "-addr", "127.0.0.1:0", "-log-format", "json")
	srv.Env = env
	// One log line per request, to a file, as a server writes them; read
	// through a pipe, they would cost this process CPU the server's
	// clients do not spend.
	logFile, err := os.Create(filepath.Join(dir, "authql.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	srv.Stderr = logFile
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("server did not start: %v", err)
	}
	base := strings.TrimPrefix(strings.TrimSpace(line), "authql listening on ")

	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true,
	}}
	b := &bench{client: client, base: base}
	if err := b.signup(stormUsers); err != nil {
		return err
	}
	token, err := b.login("bench0")
	if err != nil {
		return err
	}
	anon := b.graphql(`{"query":"{ __typename }"}`, "")
	authTypename := b.graphql(`{"query":"{ __typename }"}`, token)
	me := b.graphql(`{"query":"{ me { id username } }"}`, token)
	for _, req := range []func() error{anon, authTypename, me} { // warm up and check
		if err := req(); err != nil {
			return err
		}
	}

	fmt.Printf("authql loadbench: %s, %d CPUs, GOMAXPROCS %d, bcrypt cost %d, %v phases\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOMAXPROCS(0), *cost, *duration)

	// Alternate the phases in rounds, so that all see the same noise.
	var anonStats, authStats, meStats stats
	const rounds = 3
	for range rounds {
		anonStats.add(drive(anon, *concurrency, *duration/rounds))
		authStats.add(drive(authTypename, *concurrency, *duration/rounds))
		meStats.add(drive(me, *concurrency, *duration/rounds))
	}
	fmt.Printf("%-34s %10s %9s %9s %7s\n", "phase", "req/s", "p50", "p99", "errors")
	anonStats.print(fmt.Sprintf("anonymous { __typename } c=%d", *concurrency))
	authStats.print(fmt.Sprintf("authenticated __typename c=%d", *concurrency))
	meStats.print(fmt.Sprintf("authenticated me c=%d", *concurrency))
	fmt.Printf("  ratio me / anonymous: %.2f (target >= 0.90)\n", meStats.rps()/anonStats.rps())
	fmt.Printf("    = bearer check (authenticated / anonymous __typename) %.2f\n", authStats.rps()/anonStats.rps())
	fmt.Printf("    × resolving me (me / authenticated __typename) %.2f\n\n", meStats.rps()/authStats.rps())

	verify := measureBcrypt(*cost)
	bound := float64(runtime.NumCPU()) / verify.Seconds()
	tokenStats := drive(b.logins(), 16, 2*(*duration))
	tokenStats.print("/token password grant c=16")
	fmt.Printf("  bcrypt verify at cost %d: %v; bound %d CPUs / verify = %.1f/s\n", *cost, verify.Round(time.Millisecond), runtime.NumCPU(), bound)
	fmt.Printf("  ratio /token / bound: %.2f (target >= 0.95)\n\n", tokenStats.rps()/bound)

	storm := stormWhile(b.logins(), 64, func() stats { return drive(me, 4, 2*(*duration)) })
	storm.me.print("me c=4 during a login storm")
	storm.logins.print("  the storm: /token c=64")
	fmt.Printf("  me p99 during the storm: %v (target <= 25ms)\n\n", storm.me.pct(0.99).Round(100*time.Microsecond))

	rss, err := peakRSS(srv.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("server peak RSS: %.1f MiB (target <= 64 MiB)\n", float64(rss)/(1<<20))
	return nil
}

type bench struct {
	client *http.Client
	base   string
}

// graphql returns a request function posting body to /query.
func (b *bench) graphql(body, token string) func() error {
	return func() error {
		req, _ := http.NewRequest(http.MethodPost, b.base+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || bytes.Contains(out, []byte(`"errors"`)) {
			return fmt.Errorf("%d %s", resp.StatusCode, out)
		}
		return nil
	}
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
			errs <- b.graphql(body, "")()
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			return fmt.Errorf("signup: %w", err)
		}
	}
	return nil
}

// logins returns a request function that logs the users in in turn; a 503
// (the bcrypt bound) is an error.
func (b *bench) logins() func() error {
	var next atomic.Int64
	return func() error {
		form := loginForm(fmt.Sprintf("bench%d", next.Add(1)%stormUsers))
		resp, err := b.client.Post(b.base+"/token", "application/x-www-form-urlencoded", strings.NewReader(form))
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

func (b *bench) login(username string) (string, error) {
	resp, err := b.client.Post(b.base+"/token", "application/x-www-form-urlencoded", strings.NewReader(loginForm(username)))
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
}

func (s *stats) add(o stats) {
	s.ok = append(s.ok, o.ok...)
	s.errors += o.errors
	s.elapsed += o.elapsed
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

func (s stats) print(name string) {
	fmt.Printf("%-34s %10.1f %9v %9v %7d\n", name, s.rps(),
		s.pct(0.50).Round(10*time.Microsecond), s.pct(0.99).Round(10*time.Microsecond), s.errors)
	if s.lastErr != nil && s.errors > 0 {
		fmt.Printf("  last error: %.120v\n", s.lastErr)
	}
}

// drive runs req from c goroutines for d.
func drive(req func() error, c int, d time.Duration) stats {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return driveUntil(ctx, req, c)
}

// driveUntil runs req from c goroutines until ctx is done. A failed request
// is followed by a millisecond's pause, so that fast failures (503) do not
// spin.
func driveUntil(ctx context.Context, req func() error, c int) stats {
	results := make([]stats, c)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				if err := req(); err != nil {
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
func stormWhile(login func() error, c int, measure func() stats) stormResult {
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
