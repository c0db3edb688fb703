-- PostgreSQL twin of sqlite/0004. The requests a call created, recorded in the same transaction that created them, so a retry
-- after the engine died before storing the answer can be answered from them instead of re-running.
ALTER TABLE idempotency_keys ADD COLUMN committed_requests TEXT;
CREATE INDEX ix_requests_idempotency ON requests(user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
