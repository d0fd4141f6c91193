DROP TABLE email_changes;
DROP TABLE password_recovery_requests;
