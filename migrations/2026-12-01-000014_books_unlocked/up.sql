-- Postings lock only customers' ledger accounts. The company's books
-- (payments, revenue, adjustments) are on the other side of nearly every
-- posting: locking their rows to keep a cached balance made every PBX's
-- ingestion and every payment wait for each other. A book's balance is the
-- sum of its entries, read when wanted; its cached column stays 0.
UPDATE ledger_accounts SET balance = 0 WHERE account_id IS NULL;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_books_derived
    CHECK (account_id IS NOT NULL OR balance = 0);
