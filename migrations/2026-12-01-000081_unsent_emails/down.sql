DROP INDEX emails_unsent_idx;
