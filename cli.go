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
	"strings"

	"golang.org/x/term"

	"authql/auth"
)

// runCommand runs a CLI command against the database, beside or without a
// running server.
func runCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch strings.Join(args[:min(2, len(args))], " ") {
	case "user add":
		return userAdd(ctx, args[2:], getenv, stdin, stdout, stderr)
	}
	return usageErrorf("unknown command %q; commands: user add", strings.Join(args, " "))
}

// userAdd creates a user. The password comes from stdin, never from the
// command line, where other users of the machine could read it.
func userAdd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	username := fs.String("username", "", "the new user's `name` (required)")
	scopes := fs.String("scopes", "", "scopes granted to the user, space- or comma-separated")
	email := fs.String("email", "", "the user's email `address`")
	fullName := fs.String("full-name", "", "the user's full `name`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: authql user add -username NAME [-scopes SCOPES] [flags] < password\n\n"+
			"Creates a user. The password is read from stdin (prompted for on a terminal).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	bound := cfg.bind(fs, "db", "bcrypt-cost")
	if err := cfg.parse(fs, bound, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *username == "" {
		return usageErrorf("user add: -username is required")
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}

	cfg = withServiceDefaults(cfg)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, svc, err := openService(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := svc.CreateUser(ctx, auth.NewUser{
		Username: *username,
		Password: password,
		Email:    *email,
		FullName: *fullName,
		Scopes:   strings.FieldsFunc(*scopes, func(r rune) bool { return r == ' ' || r == ',' }),
	})
	if err != nil {
		if ae, ok := errors.AsType[*auth.Error](err); ok && ae.Code != auth.CodeInternal {
			return usageErrorf("user add: %s", ae.Message)
		}
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintf(stdout, "created user %s (id %s) with scopes %q\n", u.Username, u.ID, auth.FormatScope(u.Scopes))
	return nil
}

// withServiceDefaults fills the settings a command does not bind, which the
// service needs but the command does not use, with their defaults.
func withServiceDefaults(cfg config) config {
	defaults := defaultConfig()
	defaults.dbPath, defaults.bcryptCost = cfg.dbPath, cfg.bcryptCost
	return defaults
}

// readPassword reads a password: with a prompt and no echo on a terminal,
// else the first line of stdin without its line ending.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(stderr, "Repeat password: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(second) {
			return "", usageErrorf("the passwords differ")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usageErrorf("no password on stdin; pipe it in, e.g. printf '%%s' \"$PASSWORD\" | authql user add ...")
	}
	return line, nil
}
