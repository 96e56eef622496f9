-- A message too large to take in keeps only its header section as raw content; this says so,
-- with its size and the limit.
ALTER TABLE raw_messages ADD COLUMN body_omitted TEXT;
