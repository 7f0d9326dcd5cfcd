-- Credential versions, so that a login whose password check raced a
-- password change or a disabling opens no session, and the addresses from
-- which each user logged in, so that failures from elsewhere cannot lock the
-- user out (SPEC.md, brute-force protection).

-- +goose Up
ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS login_addresses (
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    addr            TEXT    NOT NULL,  -- an IPv4 address or an IPv6 /64
    last_success_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, addr)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_addresses_last_success_at ON login_addresses (last_success_at);

-- +goose Down
DROP TABLE login_addresses;
ALTER TABLE users DROP COLUMN credential_version;
