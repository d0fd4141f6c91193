-- Every sign-up, counted per address so the form cannot be used to test
-- names and addresses, or to spend the server's time, without limit.
CREATE TABLE sign_up_attempts (
    id BIGSERIAL PRIMARY KEY,
    ip TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sign_up_attempts_ip_at ON sign_up_attempts (ip, at);

-- Failures are now counted per username and address together.
CREATE INDEX sign_in_attempts_username_ip_at ON sign_in_attempts (username, ip, at);
