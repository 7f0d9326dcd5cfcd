-- The whole schema of authql on PostgreSQL 15 or newer: the tables of the
-- SQLite adapter's migrations, as they stand after its last one, in
-- PostgreSQL's own types, and the throttling state that SQLite keeps in
-- memory (one process) but many instances must share.
--
-- Times are Unix nanoseconds (bigint), as on SQLite: timestamptz keeps
-- microseconds only, and a time must read back exactly as it was written
-- (the service compares them). Scopes and grant types are space-delimited.
-- Migrations run under goose's advisory lock, so instances starting at once
-- apply each one once.

-- +goose Up
CREATE TABLE users (
    seq                bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order, for cursors
    id                 text    NOT NULL UNIQUE,
    username           text    NOT NULL,
    username_key       text    NOT NULL UNIQUE,  -- auth.UsernameKey(username)
    email              text    NOT NULL DEFAULT '',
    full_name          text    NOT NULL DEFAULT '',
    password_hash      bytea   NOT NULL,
    credential_version bigint  NOT NULL DEFAULT 0,
    disabled           boolean NOT NULL DEFAULT false,
    scopes             text    NOT NULL DEFAULT '',
    created_at         bigint  NOT NULL
);

CREATE TABLE sessions (
    id           text   PRIMARY KEY,
    user_id      text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    text   NOT NULL DEFAULT '',
    user_agent   text   NOT NULL DEFAULT '',
    scopes       text   NOT NULL DEFAULT '',
    created_at   bigint NOT NULL,
    last_used_at bigint NOT NULL,
    expires_at   bigint NOT NULL,
    revoked_at   bigint
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_client_id ON sessions (client_id);
-- The live sessions by expiry, for the sessions_active metric.
CREATE INDEX sessions_live ON sessions (expires_at) WHERE revoked_at IS NULL;

-- Every refresh token a session has had, by SHA-256 hash, so that a replay
-- of a rotated one is recognised (RFC 9700 section 4.14.2).
CREATE TABLE refresh_tokens (
    hash       bytea  PRIMARY KEY,
    session_id text   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at bigint NOT NULL,
    rotated_at bigint
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_rotated_at ON refresh_tokens (rotated_at) WHERE rotated_at IS NOT NULL;

CREATE TABLE settings (
    key   text  PRIMARY KEY,
    value bytea NOT NULL
);

-- Registered OAuth2 clients (RFC 6749 section 2).
CREATE TABLE clients (
    id          text   PRIMARY KEY,
    secret_hash bytea,                  -- bcrypt; NULL for a public client
    grant_types text   NOT NULL,
    scopes      text   NOT NULL DEFAULT '',  -- empty: any
    created_at  bigint NOT NULL
);

-- The addresses from which each user logged in, so that failures from
-- elsewhere cannot lock the user out.
CREATE TABLE login_addresses (
    user_id         text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    addr            text   NOT NULL,  -- an IPv4 address or an IPv6 /64
    last_success_at bigint NOT NULL,
    PRIMARY KEY (user_id, addr)
);
CREATE INDEX login_addresses_last_success_at ON login_addresses (last_success_at);

-- The asymmetric keys that sign access tokens (auth.SigningKey): published
-- from created_at, signing from active_at, never again once revoked.
CREATE TABLE signing_keys (
    id          text   PRIMARY KEY,  -- the JWS kid
    algorithm   text   NOT NULL,
    private_key bytea  NOT NULL,     -- PKCS #8 DER, sealed with KEY_ENCRYPTION_KEY
    created_at  bigint NOT NULL,
    active_at   bigint NOT NULL,
    revoked_at  bigint
);

-- Brute-force buckets (auth.ThrottleStore), shared by every instance. Each
-- row is a token bucket kept as its theoretical arrival time (GCRA): the
-- bucket is full when tat <= now, so rows with tat in the past say nothing
-- and are purged (every minute, by a sequential scan: no index on tat, so
-- that taking an event updates the row in place). Keys are 128-bit hashes
-- of what the bucket counts.
CREATE TABLE throttle_buckets (
    bucket text   NOT NULL,
    key    bytea  NOT NULL,
    tat    bigint NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- The client ids and addresses of successful client authentications, by
-- hash, which pass a spent per-client bucket.
CREATE TABLE known_client_addresses (
    client_key      bytea  NOT NULL,
    addr_key        bytea  NOT NULL,
    last_success_at bigint NOT NULL,
    PRIMARY KEY (client_key, addr_key)
);
CREATE INDEX known_client_addresses_last_success_at ON known_client_addresses (last_success_at);

-- +goose Down
DROP TABLE known_client_addresses;
DROP TABLE throttle_buckets;
DROP TABLE signing_keys;
DROP TABLE login_addresses;
DROP TABLE clients;
DROP TABLE settings;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
