-- PostgreSQL twin of sqlite/0009_object_storage_objects.sql. Keys (and bucket names, which S3
-- lists in the same order) use COLLATE "C": byte order, which for UTF-8 is the order S3 lists keys
-- in, whatever the database's default collation; the primary key's B-tree then serves a listing by
-- prefix or after a marker as one index range scan.
CREATE TABLE s3_buckets (
    name          TEXT COLLATE "C" PRIMARY KEY,
    scope_id      TEXT NOT NULL,
    region        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    object_count  BIGINT NOT NULL DEFAULT 0,
    size_bytes    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX ix_s3_buckets_scope ON s3_buckets(scope_id, name);

CREATE TABLE s3_objects (
    bucket               TEXT COLLATE "C" NOT NULL REFERENCES s3_buckets(name),
    key                  TEXT COLLATE "C" NOT NULL,
    size                 BIGINT NOT NULL,
    etag                 TEXT NOT NULL,
    parts_count          INTEGER,
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_metadata        TEXT,
    checksum_algorithm   TEXT,
    checksum_value       TEXT,
    checksum_type        TEXT,
    blob_id              TEXT NOT NULL,
    last_modified        BIGINT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX ix_s3_objects_blob ON s3_objects(blob_id);

CREATE TABLE s3_uploads (
    upload_id            TEXT PRIMARY KEY,
    bucket               TEXT COLLATE "C" NOT NULL REFERENCES s3_buckets(name),
    key                  TEXT COLLATE "C" NOT NULL,
    initiated_at         BIGINT NOT NULL,
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_metadata        TEXT,
    checksum_algorithm   TEXT
);
CREATE INDEX ix_s3_uploads_bucket_key ON s3_uploads(bucket, key, initiated_at);
CREATE INDEX ix_s3_uploads_initiated ON s3_uploads(initiated_at);

CREATE TABLE s3_parts (
    upload_id        TEXT NOT NULL REFERENCES s3_uploads(upload_id),
    part_number      INTEGER NOT NULL,
    size             BIGINT NOT NULL,
    etag             TEXT NOT NULL,
    checksum_value   TEXT,
    blob_id          TEXT NOT NULL,
    last_modified    BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE INDEX ix_s3_parts_blob ON s3_parts(blob_id);
