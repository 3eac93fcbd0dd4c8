-- Signed requests, as in the PostgreSQL migration of the same name.
ALTER TABLE jobs ADD COLUMN signing_secret TEXT;
ALTER TABLE jobs ADD COLUMN previous_signing_secret TEXT;
ALTER TABLE jobs ADD COLUMN previous_secret_expires_at TEXT;
