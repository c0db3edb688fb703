-- Object storage's S3 side: buckets, objects, and multipart uploads with their parts. Bucket names
-- are global (S3's rule), so the name is the key; the scope owns it. Object bytes live in the blob
-- store under engine-generated ids (blob_id), never under their keys.
-- Keys are compared with SQLite's BINARY collation, which compares UTF-8 bytes: the order S3 lists
-- keys in. The (bucket, key) primary key of a WITHOUT ROWID table is the table itself, so a listing
-- by prefix or after a marker is one range scan of it, however many objects the bucket holds.
CREATE TABLE s3_buckets (
    name          TEXT PRIMARY KEY,
    scope_id      TEXT NOT NULL,
    region        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    object_count  INTEGER NOT NULL DEFAULT 0, -- kept by the writes that add or remove objects
    size_bytes    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_s3_buckets_scope ON s3_buckets(scope_id, name);

CREATE TABLE s3_objects (
    bucket               TEXT NOT NULL REFERENCES s3_buckets(name),
    key                  TEXT NOT NULL,
    size                 INTEGER NOT NULL,
    etag                 TEXT NOT NULL,            -- without quotes: hex MD5, or hex MD5 of part MD5s + "-N"
    parts_count          INTEGER,                  -- multipart objects only
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_metadata        TEXT,                     -- JSON object of x-amz-meta-* (lower-case names)
    checksum_algorithm   TEXT,                     -- CRC32, CRC32C, SHA1, SHA256
    checksum_value       TEXT,                     -- base64; composite ones end in -N
    checksum_type        TEXT,                     -- FULL_OBJECT or COMPOSITE
    blob_id              TEXT NOT NULL,
    last_modified        INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
-- The orphan sweep asks whether a blob is still referenced.
CREATE INDEX ix_s3_objects_blob ON s3_objects(blob_id);

CREATE TABLE s3_uploads (
    upload_id            TEXT PRIMARY KEY,
    bucket               TEXT NOT NULL REFERENCES s3_buckets(name),
    key                  TEXT NOT NULL,
    initiated_at         INTEGER NOT NULL,
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_metadata        TEXT,
    checksum_algorithm   TEXT
);
-- ListMultipartUploads walks a bucket's uploads by key, then by when they began.
CREATE INDEX ix_s3_uploads_bucket_key ON s3_uploads(bucket, key, initiated_at);
-- The sweep that aborts incomplete uploads finds the old ones.
CREATE INDEX ix_s3_uploads_initiated ON s3_uploads(initiated_at);

CREATE TABLE s3_parts (
    upload_id        TEXT NOT NULL REFERENCES s3_uploads(upload_id),
    part_number      INTEGER NOT NULL,
    size             INTEGER NOT NULL,
    etag             TEXT NOT NULL,
    checksum_value   TEXT,
    blob_id          TEXT NOT NULL,
    last_modified    INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
CREATE INDEX ix_s3_parts_blob ON s3_parts(blob_id);
