package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"authql/auth"
	"authql/auth/authtest"
	"authql/db/pgtest"
)

// TestCopyToPostgres moves a live SQLite installation, whose keys and
// secrets are stored in clear, to PostgreSQL with 'authql copy', then
// points a server at PostgreSQL: a confidential client's tokens obtained
// before the move go on working there (the access token verifies, the
// refresh token rotates through golang.org/x/oauth2), and so do the
// passwords.
func TestCopyToPostgres(t *testing.T) {
	ctx := context.Background()
	dbPath := t.TempDir() + "/authql.db"
	sqliteEnv := map[string]string{"DB_PATH": dbPath, "BCRYPT_COST": "4"}
	base, stopSQLite := startRun(t, sqliteEnv)
	for _, cmd := range []struct {
		stdin string
		args  []string
	}{
		{alicePassword, []string{"user", "add", "-username", "alice", "-scopes", "users:read"}},
		{"a client secret of some length", []string{"client", "add", "-id", "app"}},
	} {
		if out, errOut, code := cliRunEnv(t, sqliteEnv, cmd.stdin, cmd.args...); code != 0 {
			t.Fatalf("authql %s: exit %d: %s%s", strings.Join(cmd.args, " "), code, out, errOut)
		}
	}
	conf := func(base string) *oauth2.Config {
		return &oauth2.Config{ClientID: "app", ClientSecret: "a client secret of some length",
			Endpoint: oauth2.Endpoint{TokenURL: base + "/token"}}
	}
	before, err := conf(base).PasswordCredentialsToken(ctx, "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}

	dbURL := pgtest.URL(t)
	copyEnv := map[string]string{"DB_PATH": dbPath}
	if _, errOut, code := cliRunEnv(t, copyEnv, "", "copy", "-to", dbURL); code == 0 ||
		!strings.Contains(errOut, "KEY_ENCRYPTION_KEY") {
		t.Errorf("copy without KEY_ENCRYPTION_KEY: exit %d, %q; want a refusal naming it", code, errOut)
	}
	copyEnv["KEY_ENCRYPTION_KEY"] = testKEK
	out, errOut, code := cliRunEnv(t, copyEnv, "", "copy", "-to", dbURL) // while the server runs
	if code != 0 || !strings.Contains(out, "1 users, 1 clients, 1 sessions") {
		t.Fatalf("copy: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := cliRunEnv(t, copyEnv, "", "copy", "-to", dbURL); code == 0 || !strings.Contains(errOut, "not empty") {
		t.Errorf("a second copy into the same database: exit %d, %q; want a refusal", code, errOut)
	}
	// The copy sealed what the SQLite installation stored in clear.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT private_key FROM signing_keys UNION ALL
		SELECT value FROM settings WHERE key = 'refresh_token_secret'`)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	conn.Close(ctx)
	if err != nil || len(secrets) != 2 {
		t.Fatalf("secrets in PostgreSQL: %d, %v; want a signing key and the refresh token secret", len(secrets), err)
	}
	for _, s := range secrets {
		if !auth.IsSealed(s) {
			t.Error("a secret was copied in clear")
		}
	}
	if err := stopSQLite(); err != nil {
		t.Fatal(err)
	}

	pgBase, _ := startRun(t, map[string]string{"DATABASE_URL": dbURL, "KEY_ENCRYPTION_KEY": testKEK, "BCRYPT_COST": "4"})
	authtest.WantMe(t, http.DefaultClient, pgBase+"/query", before.AccessToken, "alice")
	stale := *before
	stale.Expiry = time.Now().Add(-time.Minute)
	after, err := conf(pgBase).TokenSource(ctx, &stale).Token()
	if err != nil {
		t.Fatalf("refreshing a token from before the move: %v", err)
	}
	if after.RefreshToken == before.RefreshToken {
		t.Error("the refresh did not rotate")
	}
	authtest.WantMe(t, http.DefaultClient, pgBase+"/query", after.AccessToken, "alice")
	if _, err := conf(pgBase).PasswordCredentialsToken(ctx, "alice", alicePassword); err != nil {
		t.Errorf("logging in after the move: %v", err)
	}
}
