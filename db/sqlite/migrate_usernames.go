package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"

	"authql/auth"
)

// usernameKeysVersion is the goose version of rekeyUsernames. It shares the
// version sequence of the SQL files in migrations/: no file there may take
// its number.
const usernameKeysVersion = 4

// usernameKeysMigration recomputes users.username_key with auth.UsernameKey.
// Versions 1 to 3 stored cases.Fold(norm.NFC(username)), under which
// "alice" and the fullwidth "ａｌｉｃｅ" were two users; UsernameKey folds
// compatibility forms too. It has no down step: the old keys are not worth
// restoring, and the server only migrates up.
func usernameKeysMigration() *goose.Migration {
	return goose.NewGoMigration(usernameKeysVersion, &goose.GoFunc{RunTx: rekeyUsernames}, nil)
}

// maxLoggedIDs bounds the user ids one warning lists.
const maxLoggedIDs = 100

// rekeyUsernames gives every user the key auth.UsernameKey computes for its
// username, in one pass over the users table inside tx.
//
// When several users now share a key, the earliest created (lowest seq) gets
// it and the later ones keep their old key, which was unique and which no
// login by name reaches any more; a later user whose old key is the new key
// itself (plain "alice" created after "ａｌｉｃｅ") gets "RENAME <id>" instead,
// which is not its own UsernameKey and so cannot be reached either. Both
// are logged by user id (slog.Default, at Warn) for an operator to rename
// or delete. So are existing users whose names auth.ValidateUsername now
// refuses (look-alikes registered before its rules); they keep their keys.
//
// Running it again changes nothing, so two processes that migrate the same
// file at once (the server and the CLI) both succeed.
func rekeyUsernames(ctx context.Context, tx *sql.Tx) error {
	type user struct {
		seq                   int64
		id, oldKey, key, want string
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, id, username, username_key FROM users ORDER BY seq`)
	if err != nil {
		return err
	}
	var (
		users   []*user
		owner   = map[string]*user{} // new key -> earliest user with it
		refused []string             // ids of users the rules now refuse
	)
	for rows.Next() {
		var (
			u        user
			username string
		)
		if err := rows.Scan(&u.seq, &u.id, &username, &u.oldKey); err != nil {
			rows.Close()
			return err
		}
		u.key = auth.UsernameKey(username)
		if _, taken := owner[u.key]; !taken {
			owner[u.key] = &u
		}
		if auth.ValidateUsername(username) != nil {
			refused = append(refused, u.id)
		}
		users = append(users, &u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	current := make(map[string]bool, len(users)) // keys as stored now
	later := map[*user][]string{}                // key owner -> ids of later users with its key
	var changed []*user
	for _, u := range users {
		current[u.oldKey] = true
		switch first := owner[u.key]; {
		case first == u:
			u.want = u.key
		case owner[u.oldKey] == nil:
			u.want = u.oldKey
			later[first] = append(later[first], u.id)
		default:
			u.want = "RENAME " + u.id
			later[first] = append(later[first], u.id)
		}
		if u.want != u.oldKey {
			changed = append(changed, u)
		}
	}

	// The unique index on username_key is checked row by row, and keys may
	// move from one user to another: park every changing row on a key of its
	// own first.
	update, err := tx.PrepareContext(ctx, `UPDATE users SET username_key = ? WHERE seq = ?`)
	if err != nil {
		return err
	}
	defer update.Close()
	for _, u := range changed {
		parked := fmt.Sprintf("REKEYING %d", u.seq) // no key has upper case letters
		if current[parked] {
			return fmt.Errorf("rekey usernames: user %s already has the temporary key %q", u.id, parked)
		}
		if _, err := update.ExecContext(ctx, parked, u.seq); err != nil {
			return fmt.Errorf("rekey usernames: %w", err)
		}
	}
	for _, u := range changed {
		if _, err := update.ExecContext(ctx, u.want, u.seq); err != nil {
			return fmt.Errorf("rekey usernames: user %s: %w", u.id, err)
		}
	}

	log := slog.Default()
	for _, u := range users {
		if ids := later[u]; ids != nil {
			log.Warn("users whose usernames now equal an earlier user's cannot log in by name until an operator renames or deletes them",
				"user_id", u.id, "later_user_ids", ids)
		}
	}
	if len(refused) > 0 {
		log.Warn("existing usernames break the username rules (look-alike, invisible or mixed-script characters); review these users",
			"count", len(refused), "user_ids", refused[:min(len(refused), maxLoggedIDs)])
	}
	return nil
}
