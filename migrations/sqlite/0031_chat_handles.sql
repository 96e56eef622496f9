-- A chat identity keeps the account's handle (Telegram's @username, Discord's username) beside
-- its display name, so agents see it and find the customer by it. Rows taken in before have
-- none until the customer writes again. Keep in step with migrations/postgres.
ALTER TABLE customer_identities ADD COLUMN handle TEXT;
