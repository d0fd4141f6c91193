-- Trouble tickets: a client's question about their account (or one of its
-- PBXs), answered by staff in a thread. A ticket is `open` until staff first
-- answer, then waits on one side or the other until staff close it; a
-- client's reply reopens a closed one.
CREATE TABLE tickets (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    opened_by BIGINT NOT NULL REFERENCES users (id),
    pbx_id BIGINT REFERENCES pbxes (id),
    subject TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    category TEXT NOT NULL
        CHECK (category IN ('calls', 'billing', 'pbx', 'numbers', 'account', 'other')),
    state TEXT NOT NULL DEFAULT 'open'
        CHECK (state IN ('open', 'awaiting_staff', 'awaiting_client', 'closed')),
    assignee_id BIGINT REFERENCES users (id),
    -- The opening form's one-time value: submitting it twice opens one ticket.
    request_key TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The last change a client may see (a message, a new state); internal
    -- notes leave it alone.
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at TIMESTAMPTZ,
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
CREATE UNIQUE INDEX tickets_request_key_idx ON tickets (opened_by, request_key);
CREATE INDEX tickets_account_idx ON tickets (account_id, id);
CREATE INDEX tickets_state_idx ON tickets (state, id);
CREATE INDEX tickets_assignee_idx ON tickets (assignee_id, id);

-- A ticket's thread. Internal notes are written by staff for staff; the
-- client never sees them.
CREATE TABLE ticket_messages (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    author_id BIGINT NOT NULL REFERENCES users (id),
    from_staff BOOLEAN NOT NULL,
    internal BOOLEAN NOT NULL DEFAULT false,
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    -- The reply form's one-time value: submitting it twice posts once.
    request_key TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (from_staff OR NOT internal)
);
CREATE UNIQUE INDEX ticket_messages_request_key_idx ON ticket_messages (ticket_id, request_key);
CREATE INDEX ticket_messages_ticket_idx ON ticket_messages (ticket_id, id);
