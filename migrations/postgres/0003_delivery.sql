-- Delivery of outbound messages: pending until the channel took it, then sent or failed.
ALTER TABLE messages ADD COLUMN delivery_status TEXT
    CHECK (delivery_status IN ('pending', 'sent', 'failed'));
ALTER TABLE messages ADD COLUMN delivery_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN delivery_error TEXT;
ALTER TABLE messages ADD COLUMN delivered_at TIMESTAMPTZ;
CREATE INDEX messages_delivery ON messages (delivery_status) WHERE delivery_status IS NOT NULL;
