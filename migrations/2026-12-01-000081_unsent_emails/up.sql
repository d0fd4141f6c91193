-- `/metrics` counts the emails not sent yet at every scrape: through this
-- index, however many were sent before.
CREATE INDEX emails_unsent_idx ON emails (created_at) WHERE state <> 'sent';
