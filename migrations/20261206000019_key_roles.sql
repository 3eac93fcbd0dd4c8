-- What an API key may do: editor (read and change, what every key made before could do)
-- or viewer (read only). Adding a column with a constant default rewrites nothing.
ALTER TABLE api_keys
    ADD COLUMN role text NOT NULL DEFAULT 'editor' CHECK (role IN ('editor', 'viewer'));
