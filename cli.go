package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"authql/auth"
	"authql/db"
	"authql/db/postgres"
)

// command is a CLI command. define registers the command's own flags and
// returns its action, which runs once the flags are parsed and the service is
// open.
type command struct {
	name     string // e.g. "user add"
	synopsis string
	about    string
	// hashes says that the command hashes a password or secret, and so
	// takes -bcrypt-cost.
	hashes bool
	// keys says that the command manages signing keys, and so takes
	// -jwt-alg and -access-token-ttl.
	keys bool
	// sealing says that the command stores secrets, and so takes
	// -key-encryption-key.
	sealing bool
	// arg names the command's one argument after its flags, if it has one.
	arg string
	// database says what the command does with the database: only migrate
	// creates one; version needs none.
	database databaseUse
	define   func(fs *flag.FlagSet) action
}

type databaseUse int

const (
	existingDatabase databaseUse = iota // refuse a database that does not exist
	createDatabase
	noDatabase
)

type action func(ctx context.Context, svc *auth.Service, cio cliIO) error

// cliIO is where a command reads secrets, writes its answer, and finds the
// database it opened (nil for a command that needs none).
type cliIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	store          db.Database
	// dbName names the database for messages: the SQLite file's absolute
	// path, or the PostgreSQL database without its password.
	dbName string
	// sealer seals the secrets a command stores (KEY_ENCRYPTION_KEY); nil
	// without one.
	sealer *auth.Sealer
	// arg is the command's argument after its flags (see command.arg).
	arg string
}

// commands are every CLI command. They work beside a running server on the
// same database.
var commands = []command{
	{
		name:     "user add",
		synopsis: "-username NAME [-scopes SCOPES] [-email ADDR] [-full-name NAME] < password",
		about:    "Creates a user. The password is read from stdin (prompted for on a terminal).",
		hashes:   true,
		define: func(fs *flag.FlagSet) action {
			username := usernameFlag(fs)
			scopes := fs.String("scopes", "", "scopes granted to the user, space- or comma-separated")
			email := fs.String("email", "", "the user's email `address`")
			fullName := fs.String("full-name", "", "the user's full `name`")
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				if *username == "" {
					return usageErrorf("-username is required")
				}
				password, err := readSecret(cio, "Password")
				if err != nil {
					return err
				}
				u, err := svc.CreateUser(ctx, auth.NewUser{
					Username: *username,
					Password: password,
					Email:    *email,
					FullName: *fullName,
					Scopes:   noteNewScopes(ctx, svc, cio, splitList(*scopes)),
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "created user %s (id %s) with scopes %q\n", u.Username, u.ID, auth.FormatScope(u.Scopes))
				return nil
			}
		},
	},
	{
		name:     "user passwd",
		synopsis: "-username NAME < password",
		about:    "Sets a user's password and ends all of the user's sessions. The password is read from stdin.",
		hashes:   true,
		define: func(fs *flag.FlagSet) action {
			return forUser(fs, func(ctx context.Context, svc *auth.Service, cio cliIO, u *auth.User) error {
				password, err := readSecret(cio, "New password")
				if err != nil {
					return err
				}
				if err := svc.SetPassword(ctx, u.ID, password); err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "changed the password of %s and ended its sessions\n", u.Username)
				return nil
			})
		},
	},
	{
		name:     "user disable",
		synopsis: "-username NAME",
		about:    "Disables a user: logins fail and its tokens stop working at once.",
		define:   func(fs *flag.FlagSet) action { return setDisabled(fs, true) },
	},
	{
		name:     "user enable",
		synopsis: "-username NAME",
		about:    "Enables a disabled user.",
		define:   func(fs *flag.FlagSet) action { return setDisabled(fs, false) },
	},
	{
		name:     "user scopes",
		synopsis: "-username NAME -scopes SCOPES",
		about:    "Replaces the scopes granted to a user (-scopes \"\" removes them all). Tokens lose removed scopes at once.",
		define: func(fs *flag.FlagSet) action {
			scopes := fs.String("scopes", "", "the scopes, space- or comma-separated (required)")
			return forUser(fs, func(ctx context.Context, svc *auth.Service, cio cliIO, u *auth.User) (err error) {
				if !flagSet(fs, "scopes") {
					return usageErrorf("-scopes is required")
				}
				if u, err = svc.SetUserScopes(ctx, auth.Operator, u.ID, noteNewScopes(ctx, svc, cio, splitList(*scopes))); err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "scopes of %s: %q\n", u.Username, auth.FormatScope(u.Scopes))
				return nil
			})
		},
	},
	{
		name:     "user list",
		synopsis: "",
		about:    "Lists every user, oldest first.",
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSERNAME\tDISABLED\tSCOPES\tCREATED")
				cursor := ""
				for {
					page, err := svc.ListUsers(ctx, auth.Operator, auth.MaxPageSize, cursor)
					if err != nil {
						return err
					}
					for _, u := range page.Users {
						fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", u.ID, u.Username, u.Disabled,
							auth.FormatScope(u.Scopes), u.CreatedAt.Format(time.RFC3339))
					}
					if !page.HasNextPage {
						return tw.Flush()
					}
					cursor = page.Cursors[len(page.Cursors)-1]
				}
			}
		},
	},
	{
		name:     "user delete",
		synopsis: "-username NAME",
		about:    "Deletes a user with its sessions: its tokens stop working at once.",
		define: func(fs *flag.FlagSet) action {
			return forUser(fs, func(ctx context.Context, svc *auth.Service, cio cliIO, u *auth.User) error {
				if err := svc.DeleteUser(ctx, auth.Operator, u.ID); err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "deleted user %s (id %s) and ended its sessions\n", u.Username, u.ID)
				return nil
			})
		},
	},
	{
		name:     "client add",
		synopsis: "-id ID [-public] [-grants GRANTS] [-scopes SCOPES] < secret",
		about: "Registers an OAuth2 client. A confidential client's secret is read from stdin;\n" +
			"-public registers a client without one.",
		hashes: true,
		define: func(fs *flag.FlagSet) action {
			id := fs.String("id", "", "the client_id (required)")
			public := fs.Bool("public", false, "register a public client, with no secret")
			grants := fs.String("grants", strings.Join(auth.GrantTypes, ","), "grant types the client may use, space- or comma-separated")
			scopes := fs.String("scopes", "", "scopes the client's tokens may carry, space- or comma-separated (default: any)")
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				if *id == "" {
					return usageErrorf("-id is required")
				}
				var secret string
				if !*public {
					var err error
					if secret, err = readSecret(cio, "Client secret"); err != nil {
						return err
					}
				}
				c, err := svc.RegisterClient(ctx, auth.NewClient{
					ID: *id, Secret: secret, GrantTypes: splitList(*grants), Scopes: noteNewScopes(ctx, svc, cio, splitList(*scopes)),
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "registered %s client %s (grants %s; scopes %s)\n",
					clientType(c), c.ID, strings.Join(c.GrantTypes, " "), scopesOrAny(c.Scopes))
				return nil
			}
		},
	},
	{
		name:     "client list",
		synopsis: "",
		about:    "Lists the registered OAuth2 clients.",
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				clients, err := svc.Clients(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTYPE\tGRANTS\tSCOPES\tCREATED")
				for _, c := range clients {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, clientType(c), strings.Join(c.GrantTypes, " "),
						scopesOrAny(c.Scopes), c.CreatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			}
		},
	},
	{
		name:     "client remove",
		synopsis: "-id ID",
		about:    "Removes an OAuth2 client and ends the sessions opened through it.",
		define: func(fs *flag.FlagSet) action {
			id := fs.String("id", "", "the client_id (required)")
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				if *id == "" {
					return usageErrorf("-id is required")
				}
				if err := svc.RemoveClient(ctx, *id); err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "removed client %s and ended its sessions\n", *id)
				return nil
			}
		},
	},
	{
		name:     "backup",
		synopsis: "-o FILE",
		about: "Writes a consistent copy of the database, while the server runs, to a new file\n" +
			"(mode 0600). A plain cp of a live database is not a backup: its recent writes\n" +
			"are still in the -wal file.",
		define: func(fs *flag.FlagSet) action {
			out := fs.String("o", "", "the `file` to write; it must not exist (required)")
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				if *out == "" {
					return usageErrorf("-o is required")
				}
				backup, ok := cio.store.(interface {
					Backup(ctx context.Context, path string) error
				})
				if !ok {
					return errors.New("with DATABASE_URL, back up with PostgreSQL's own tools: " +
						"pg_dump --format=custom --file=FILE \"$DATABASE_URL\"")
				}
				if err := backup.Backup(ctx, *out); err != nil {
					return err
				}
				abs, err := filepath.Abs(*out)
				if err != nil {
					abs = *out
				}
				fmt.Fprintf(cio.stdout, "backed up %s to %s\n", cio.dbName, abs)
				return nil
			}
		},
	},
	{
		name:     "key list",
		synopsis: "",
		about:    "Lists the signing keys: kid, algorithm, state and dates (never a private part).",
		keys:     true,
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				keys, err := svc.SigningKeys(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cio.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRES\tREVOKED")
				stamp := func(t *time.Time) string {
					if t == nil {
						return "-"
					}
					return t.UTC().Format(time.RFC3339)
				}
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State,
						stamp(&k.CreatedAt), stamp(&k.ActiveAt), stamp(k.RetiresAt), stamp(k.RevokedAt))
				}
				return tw.Flush()
			}
		},
	},
	{
		name:     "key rotate",
		synopsis: "",
		about: "Starts a rotation: a new key is published now and signs after the lead time (1h),\n" +
			"so that verifiers' cached key sets have it first; nobody is logged out.",
		keys: true,
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				k, added, err := svc.RotateSigningKey(ctx)
				if err != nil {
					return err
				}
				if !added {
					return errors.New("a rotation is under way: a key is already waiting to sign (see authql key list)")
				}
				fmt.Fprintf(cio.stdout, "new signing key %s (%s) is published and signs from %s\n",
					k.ID, k.Algorithm, k.ActiveAt.UTC().Format(time.RFC3339))
				return nil
			}
		},
	},
	{
		name:     "key revoke",
		synopsis: "KID",
		arg:      "KID",
		about: "Revokes a signing key at once: it neither signs nor verifies; its tokens are refused\n" +
			"(by a running server within a second). Revoking the active key makes a new one.",
		keys: true,
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				if cio.arg == "" {
					return usageErrorf("give the kid of the key to revoke (see authql key list)")
				}
				if err := svc.RevokeSigningKey(ctx, cio.arg); err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "revoked signing key %s\n", cio.arg)
				return nil
			}
		},
	},
	{
		name:     "copy",
		synopsis: "-to postgres://… [-key-encryption-key KEY]",
		about: "Copies every row of the SQLite database (DB_PATH) into an empty PostgreSQL\n" +
			"database, in one transaction: users, clients, sessions, refresh tokens, signing\n" +
			"keys and settings, so that every password and token goes on working there. It\n" +
			"refuses a database that holds any. KEY_ENCRYPTION_KEY is required, as on a\n" +
			"server with DATABASE_URL: secrets stored in clear are sealed with it on the way.",
		sealing: true,
		define: func(fs *flag.FlagSet) action {
			to := fs.String("to", "", "the PostgreSQL `URL` (postgres://…) to copy into (required)")
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				if !postgres.IsURL(*to) {
					return usageErrorf("-to must be a postgres:// or postgresql:// URL")
				}
				if cio.sealer == nil {
					return usageErrorf("KEY_ENCRYPTION_KEY (-key-encryption-key) is required: " +
						"every server on PostgreSQL needs it, and the secrets must not be stored in clear")
				}
				n, err := copyToPostgres(ctx, cio.store, *to, cio.sealer)
				if err != nil {
					return err
				}
				fmt.Fprintf(cio.stdout, "copied %s to %s: %s\n", cio.dbName, databaseName(storeOptions{url: *to}), n)
				return nil
			}
		},
	},
	{
		name:     "migrate",
		synopsis: "",
		about:    "Creates the database, or upgrades it to this version's schema, and exits.",
		database: createDatabase,
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				fmt.Fprintf(cio.stdout, "the database %s is ready\n", cio.dbName)
				return nil
			}
		},
	},
	{
		name:     "version",
		synopsis: "",
		about:    "Prints the version, the source revision and the Go version of this binary.",
		database: noDatabase,
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
				fmt.Fprintln(cio.stdout, versionLine())
				return nil
			}
		},
	},
}

// versionLine describes the binary from its build information: the module
// version (a tag, or "(devel)" for a build from a working tree), the VCS
// revision and time, whether the tree had changes, and the Go version.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "authql (no build information)"
	}
	line := "authql " + info.Main.Version
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		line += " revision " + rev
		if t := settings["vcs.time"]; t != "" {
			line += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			line += " with uncommitted changes"
		}
	}
	return line + " " + info.GoVersion
}

// commandNames lists the commands for error messages.
func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// findCommand returns the command that args name and the arguments after
// its name. For a group alone ("user", "user -h") it returns a usage error
// listing the group's commands, or nil with the list printed for -h.
func findCommand(args []string, stderr io.Writer) (*command, []string, error) {
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return &commands[i], args[len(words):], nil
		}
	}
	var group []string
	for _, c := range commands {
		if rest, ok := strings.CutPrefix(c.name, args[0]+" "); ok {
			group = append(group, rest)
		}
	}
	if len(group) == 0 {
		return nil, nil, usageErrorf("unknown command %q; commands: %s", strings.Join(args, " "), commandNames())
	}
	list := fmt.Sprintf("authql %s COMMAND: one of %s (authql %s COMMAND -h for each)", args[0], strings.Join(group, ", "), args[0])
	if len(args) > 1 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help") {
		fmt.Fprintln(stderr, list)
		return nil, nil, nil
	}
	if len(args) > 1 {
		return nil, nil, usageErrorf("unknown command %q; %s", strings.Join(args[:2], " "), list)
	}
	return nil, nil, &usageError{list}
}

// runCommand runs the CLI command that args name.
func runCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest, err := findCommand(args, stderr)
	if cmd == nil {
		return err
	}

	cfg := defaultConfig()
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: authql %s %s\n\n%s\n\nFlags:\n", cmd.name, cmd.synopsis, cmd.about)
		fs.PrintDefaults()
	}
	run := cmd.define(fs)
	settings := []string{"db", "database-url"}
	if cmd.hashes {
		settings = append(settings, "bcrypt-cost")
	}
	if cmd.keys {
		settings = append(settings, "jwt-alg", "access-token-ttl")
	}
	if cmd.keys || cmd.sealing {
		settings = append(settings, "key-encryption-key")
	}
	var bound []setting
	if cmd.database != noDatabase {
		bound = cfg.bind(fs, settings...)
	}
	var arg string
	if cmd.arg != "" && len(rest) > 0 && !strings.HasPrefix(rest[len(rest)-1], "-") {
		arg, rest = rest[len(rest)-1], rest[:len(rest)-1]
	}
	if err := cfg.parse(fs, bound, rest, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%s: %w", cmd.name, err)
	}

	cio := cliIO{stdin: stdin, stdout: stdout, stderr: stderr, arg: arg}
	var svc *auth.Service
	if cmd.database != noDatabase {
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		costGiven := flagSet(fs, "bcrypt-cost") || getenv("BCRYPT_COST") != ""
		if !cmd.hashes {
			// Nothing to hash: the cost only sets the dummy hash that the
			// service makes at start, so make that cheap.
			cfg.auth.BcryptCost, costGiven = bcrypt.MinCost, true
		}
		cfg.store.sqlite.MustExist = cmd.database == existingDatabase
		cfg.store.postgres.MustExist = cmd.database == existingDatabase
		var err error
		if cio.store, svc, err = openManagement(ctx, cfg, costGiven, cmd.keys, logger); err != nil {
			return err
		}
		defer cio.store.Close()
		cio.dbName, cio.sealer = databaseName(cfg.store), cfg.auth.Sealer
	}
	if err := run(ctx, svc, cio); err != nil {
		if ae, ok := errors.AsType[*auth.Error](err); ok && ae.Code != auth.CodeInternal {
			return fmt.Errorf("%s: %s", cmd.name, ae.Message)
		}
		return fmt.Errorf("%s: %w", cmd.name, err)
	}
	return nil
}

// openManagement opens the database of cfg and builds a service that
// manages users and clients only: it holds no token keys, and makes and
// stores none. New hashes get cfg's cost when costGiven (BCRYPT_COST or
// -bcrypt-cost was given), else the cost the server recorded, else the
// default, so that the CLI's users cannot be told from the server's by the
// time a password check takes.
//
// A key command's service (keys) knows the signing algorithm, to list,
// rotate and revoke keys; it still makes no key by itself.
func openManagement(ctx context.Context, cfg config, costGiven, keys bool, logger *slog.Logger) (db.Database, *auth.Service, error) {
	store, err := openDatabase(ctx, cfg.store)
	if err != nil {
		return nil, nil, err
	}
	sc := cfg.auth
	if !costGiven {
		stored, err := store.Setting(ctx, bcryptCostSetting)
		if err != nil && !errors.Is(err, auth.ErrNotFound) {
			store.Close()
			return nil, nil, fmt.Errorf("read the server's bcrypt cost: %w", err)
		}
		if n, convErr := strconv.Atoi(string(stored)); err == nil && convErr == nil {
			sc.BcryptCost = n
		}
	}
	sc.Secret, sc.Logger = nil, logger
	if !keys {
		sc.SigningAlgorithm = ""
	}
	svc, err := auth.NewService(store, sc)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, svc, nil
}

// usernameFlag defines the -username flag, which the action checks through
// userNamed.
func usernameFlag(fs *flag.FlagSet) *string {
	return fs.String("username", "", "the user's `name` (required)")
}

// userNamed returns the user called username.
func userNamed(ctx context.Context, svc *auth.Service, username string) (*auth.User, error) {
	if username == "" {
		return nil, usageErrorf("-username is required")
	}
	u, err := svc.UserByUsername(ctx, username)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, fmt.Errorf("no user %q", username)
	}
	return u, err
}

func setDisabled(fs *flag.FlagSet, disabled bool) action {
	return forUser(fs, func(ctx context.Context, svc *auth.Service, cio cliIO, u *auth.User) (err error) {
		if u, err = svc.SetUserDisabled(ctx, auth.Operator, u.ID, disabled); err != nil {
			return err
		}
		state := "enabled"
		if u.Disabled {
			state = "disabled; its sessions have ended"
		}
		fmt.Fprintf(cio.stdout, "user %s is %s\n", u.Username, state)
		return nil
	})
}

// forUser defines -username and returns the action that runs act on the
// user it names.
func forUser(fs *flag.FlagSet, act func(ctx context.Context, svc *auth.Service, cio cliIO, u *auth.User) error) action {
	username := usernameFlag(fs)
	return func(ctx context.Context, svc *auth.Service, cio cliIO) error {
		u, err := userNamed(ctx, svc, *username)
		if err != nil {
			return err
		}
		return act(ctx, svc, cio, u)
	}
}

// flagSet reports whether flag name was given on the command line or by
// its environment variable.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// noteNewScopes returns scopes, after telling the operator on stderr which
// of them no user or client has yet: a scope is any well-formed word, so a
// typo ("user:read" for "users:read") would otherwise be granted silently.
func noteNewScopes(ctx context.Context, svc *auth.Service, cio cliIO, scopes []string) []string {
	known, err := svc.SupportedScopes(ctx)
	if err != nil {
		return scopes // the command itself will report the database's trouble
	}
	for _, sc := range scopes {
		if auth.ValidScopeToken(sc) && !slices.Contains(known, sc) {
			fmt.Fprintf(cio.stderr, "note: no user or client has the scope %q yet; check its spelling\n", sc)
		}
	}
	return scopes
}

// splitList splits a space- or comma-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

func clientType(c *auth.Client) string {
	if c.Confidential {
		return "confidential"
	}
	return "public"
}

func scopesOrAny(scopes []string) string {
	if len(scopes) == 0 {
		return "any"
	}
	return auth.FormatScope(scopes)
}

// readSecret reads a password or client secret: with a prompt, twice and
// without echo on a terminal; else the first line of stdin without its line
// ending. Secrets never come from the command line, where other users of the
// machine could read them.
func readSecret(cio cliIO, label string) (string, error) {
	if f, ok := cio.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var answers [2]string
		for i, prompt := range []string{label + ": ", "Repeat " + strings.ToLower(label) + ": "} {
			fmt.Fprint(cio.stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cio.stderr)
			if err != nil {
				return "", fmt.Errorf("read %s: %w", strings.ToLower(label), err)
			}
			answers[i] = string(b)
		}
		if answers[0] != answers[1] {
			return "", usageErrorf("the two entries differ")
		}
		return answers[0], nil
	}
	line, err := bufio.NewReader(io.LimitReader(cio.stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read %s from stdin: %w", strings.ToLower(label), err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usageErrorf("no %s on stdin; pipe it in, e.g. printf '%%s' \"$SECRET\" | authql ...", strings.ToLower(label))
	}
	return line, nil
}
