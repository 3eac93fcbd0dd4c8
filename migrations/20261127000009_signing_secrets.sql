-- Signed requests (Standard Webhooks). Both secrets are sealed (AES-256-GCM, ENCRYPTION_KEY);
-- during a rotation the previous one signs too, until previous_secret_expires_at.
ALTER TABLE jobs ADD COLUMN signing_secret text;
ALTER TABLE jobs ADD COLUMN previous_signing_secret text;
ALTER TABLE jobs ADD COLUMN previous_secret_expires_at timestamptz;
