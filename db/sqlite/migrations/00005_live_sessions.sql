-- The live sessions by expiry, so that counting them (the sessions_active
-- metric, at every scrape) reads this index instead of the whole table,
-- where ended sessions stay until PurgeSessions deletes them a day later.
-- The count's WHERE clause must repeat this one's for SQLite to use it;
-- revoked_at, always NULL here, makes the index cover that clause, so that
-- the count never reads the table.

-- +goose Up
CREATE INDEX IF NOT EXISTS sessions_live ON sessions (expires_at, revoked_at) WHERE revoked_at IS NULL;

-- +goose Down
DROP INDEX sessions_live;
