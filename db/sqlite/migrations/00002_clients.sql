-- Registered OAuth2 clients (RFC 6749 section 2).

-- +goose Up
CREATE TABLE IF NOT EXISTS clients (
    id          TEXT    PRIMARY KEY,
    secret_hash BLOB,                         -- bcrypt; NULL for a public client
    grant_types TEXT    NOT NULL,             -- space-delimited
    scopes      TEXT    NOT NULL DEFAULT '',  -- space-delimited; empty: any
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS sessions_client_id ON sessions (client_id);

-- +goose Down
DROP INDEX sessions_client_id;
DROP TABLE clients;
