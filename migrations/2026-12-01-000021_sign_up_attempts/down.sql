DROP INDEX sign_in_attempts_username_ip_at;
DROP TABLE sign_up_attempts;
