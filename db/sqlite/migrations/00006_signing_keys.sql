-- The asymmetric keys that sign access tokens (auth.SigningKey): published
-- from created_at, signing from active_at, never again once revoked.

-- +goose Up
CREATE TABLE IF NOT EXISTS signing_keys (
    id          TEXT    PRIMARY KEY,   -- the JWS kid
    algorithm   TEXT    NOT NULL,      -- ES256, EdDSA or RS256
    private_key BLOB    NOT NULL,      -- PKCS #8 DER
    created_at  INTEGER NOT NULL,
    active_at   INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- +goose Down
DROP TABLE signing_keys;
