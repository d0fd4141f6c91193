ALTER TABLE calls
    ADD CONSTRAINT calls_pbx_id_fkey FOREIGN KEY (pbx_id) REFERENCES pbxes (id),
    ADD CONSTRAINT calls_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id);
