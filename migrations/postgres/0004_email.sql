-- A reply that continues a ticket keeps what the customer newly wrote in body_text and the
-- mail it quotes (and the signature) here, so the whole text stays available.
ALTER TABLE messages ADD COLUMN quoted_text TEXT;

-- When an address was last sent an automatic acknowledgement: at most one per interval.
ALTER TABLE customer_identities ADD COLUMN acknowledged_at TIMESTAMPTZ;

-- How each channel connection is doing, as its adapter last reported: read by the admin page
-- and /metrics of any instance.
CREATE TABLE channel_health (
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    connected BOOLEAN NOT NULL,
    detail TEXT,
    last_success_at TIMESTAMPTZ,
    last_error TEXT,
    last_error_at TIMESTAMPTZ,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    backlog BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, name)
);
