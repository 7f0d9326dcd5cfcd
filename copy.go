package main

import (
	"context"
	"errors"
	"fmt"

	"authql/auth"
	"authql/db"
	"authql/db/postgres"
)

// copyToPostgres copies every row of from, an SQLite database, into the
// empty PostgreSQL database at url, and says what it copied. Secrets stored
// in clear (an installation without KEY_ENCRYPTION_KEY) are sealed with
// sealer on the way; sealed ones must open with it, or the servers on
// PostgreSQL could not read them. The legacy HS256 key of an earlier
// version stays behind: tokens it signed expired within ACCESS_TOKEN_TTL
// of the upgrade that replaced it.
func copyToPostgres(ctx context.Context, from db.Database, url string, sealer *auth.Sealer) (string, error) {
	dumper, ok := from.(interface {
		Dump(ctx context.Context) (*db.Dump, error)
	})
	if !ok {
		return "", errors.New("copy reads an SQLite database (DB_PATH); with DATABASE_URL set, use pg_dump")
	}
	dump, err := dumper.Dump(ctx)
	if err != nil {
		return "", fmt.Errorf("read the SQLite database: %w", err)
	}
	seal := func(name string, stored []byte) ([]byte, error) {
		if !auth.IsSealed(stored) {
			return sealer.Seal(name, stored), nil
		}
		if _, err := auth.Unseal(sealer, name, stored); err != nil {
			return nil, fmt.Errorf("the %w: give the KEY_ENCRYPTION_KEY that the SQLite installation uses", err)
		}
		return stored, nil
	}
	for _, k := range dump.SigningKeys {
		if k.Private, err = seal("signing key "+k.ID, k.Private); err != nil {
			return "", err
		}
	}
	settings := dump.Settings[:0]
	for _, s := range dump.Settings {
		switch s.Key {
		case legacySecretSetting:
			continue
		case refreshSecretSetting:
			if s.Value, err = seal(refreshSecretSetting, s.Value); err != nil {
				return "", err
			}
		}
		settings = append(settings, s)
	}
	dump.Settings = settings

	to, err := postgres.Open(ctx, url)
	if err != nil {
		return "", err
	}
	defer to.Close()
	if err := to.Load(ctx, dump); err != nil {
		return "", fmt.Errorf("copy into PostgreSQL (nothing was copied): %w", err)
	}
	return fmt.Sprintf("%d users, %d clients, %d sessions, %d refresh tokens, %d signing keys, %d settings",
		len(dump.Users), len(dump.Clients), len(dump.Sessions), len(dump.RefreshTokens), len(dump.SigningKeys), len(dump.Settings)), nil
}
