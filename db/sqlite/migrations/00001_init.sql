-- Times are Unix nanoseconds (UTC). Statements use IF NOT EXISTS so that two
-- processes migrating a new file at once (server and CLI) both succeed.

-- +goose Up
CREATE TABLE IF NOT EXISTS users (
    seq           INTEGER PRIMARY KEY,      -- creation order, for cursors
    id            TEXT    NOT NULL UNIQUE,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,  -- auth.UsernameKey(username)
    email         TEXT    NOT NULL DEFAULT '',
    full_name     TEXT    NOT NULL DEFAULT '',
    password_hash BLOB    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    scopes        TEXT    NOT NULL DEFAULT '',  -- space-delimited
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS sessions (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    scopes       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions (user_id);

-- Every refresh token a session has had, by SHA-256 hash, so that a replay
-- of a rotated one is recognised (RFC 9700 section 4.14.2).
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       BLOB    PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- +goose Down
DROP TABLE settings;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
