-- Object storage's key pair per scope (an organization, or "user:<id>" for a user without one).
-- The secret is needed in full to check SigV4 signatures, so it cannot be hashed like API keys; it is
-- sealed (AES-256-GCM, bound to its access key id) with a key file in the data directory, so a copy
-- of the database alone does not hold usable secrets. A disabled scope keeps its row without keys:
-- its usage this month is still billed, and enabling again issues fresh keys.
CREATE TABLE object_storage_accounts (
    scope_id       TEXT PRIMARY KEY,
    access_key_id  TEXT UNIQUE,
    secret_sealed  TEXT,
    iam_username   TEXT NOT NULL,
    status         TEXT NOT NULL, -- 'active' or 'disabled'
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- What object storage bills, per scope and calendar month (UTC). stored_bytes is the running total;
-- peak_bytes its highest value this month; requests the S3 requests this month. The month's charges
-- are cumulative functions of time whose increments go to the ledger (billed_* is what was posted),
-- as clusters' and volumes' are: storage = peak GB x price x the part of the month elapsed since
-- period_start, requests = requests x price / 1000.
CREATE TABLE object_storage_usage (
    scope_id                TEXT PRIMARY KEY,
    stored_bytes            INTEGER NOT NULL DEFAULT 0,
    month_start             INTEGER NOT NULL,
    period_start            INTEGER NOT NULL,
    peak_bytes              INTEGER NOT NULL DEFAULT 0,
    requests                INTEGER NOT NULL DEFAULT 0,
    billed_storage_micros   INTEGER NOT NULL DEFAULT 0,
    billed_request_micros   INTEGER NOT NULL DEFAULT 0
);
