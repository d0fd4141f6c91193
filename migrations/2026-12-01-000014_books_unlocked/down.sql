ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_books_derived;
UPDATE ledger_accounts la SET balance = coalesce((SELECT sum(amount) FROM journal_entries e WHERE e.ledger_account_id = la.id), 0)
WHERE account_id IS NULL;
