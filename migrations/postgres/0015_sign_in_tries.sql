-- Sign-in tries are counted before the password is checked: one row per address and one per
-- client IP, raised by a single upsert that returns the new count, so parallel tries (on one
-- instance or several) cannot all see a count below the limit. The count restarts when its
-- window has passed. Replaces the log of failures, which was read first and written after the
-- check. Keep in step with migrations/sqlite.
DROP TABLE login_failures;
CREATE TABLE sign_in_tries (
    -- 'email' or 'ip'.
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    tries BIGINT NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX sign_in_tries_window ON sign_in_tries (window_started_at);
