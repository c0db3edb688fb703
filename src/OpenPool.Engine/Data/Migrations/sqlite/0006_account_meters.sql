-- What each account's running clusters and volumes have accrued since their meters were last
-- written, kept as running sums so the balance check every claim makes reads one row instead of
-- summing over every running resource (bench/run.sh --only claims-sqlite showed that sum growing to
-- a third of the writer's time at 20,000 running clusters). For a resource metering at rate r since
-- b (billed_until), accrued(now) = r * (now - b) / hour; summed, that is (R * now - SUM(r * b)) / hour.
-- r * b would overflow 64 bits summed over a few clusters, so b is split at bit 20 into high and low
-- parts, each product summed apart; the engine recombines them in 128 bits. Triggers keep the sums,
-- so no code path that starts, charges or stops a meter can forget them.
-- (SQLite has one writer, so each account keeps one row, shard 0.)
CREATE TABLE account_meters (
    account_kind  TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    shard         INTEGER NOT NULL DEFAULT 0,
    cluster_rate  INTEGER NOT NULL DEFAULT 0, -- sum of price_micros_per_hour
    cluster_high  INTEGER NOT NULL DEFAULT 0, -- sum of price_micros_per_hour * (billed_until >> 20)
    cluster_low   INTEGER NOT NULL DEFAULT 0, -- sum of price_micros_per_hour * (billed_until & 0xFFFFF)
    volume_gb     INTEGER NOT NULL DEFAULT 0, -- sum of size_gb
    volume_high   INTEGER NOT NULL DEFAULT 0,
    volume_low    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_kind, account_id, shard)
);

-- clusters: a metered row's old values leave its account's sums and its new values enter them.
CREATE TRIGGER tr_clusters_meter_insert AFTER INSERT ON clusters WHEN NEW.billing_started_at IS NOT NULL AND NEW.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, cluster_rate, cluster_high, cluster_low)
    VALUES (CASE WHEN NEW.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(NEW.org_id, NEW.user_id), 0,
            NEW.price_micros_per_hour, NEW.price_micros_per_hour * (COALESCE(NEW.billed_until, NEW.billing_started_at) >> 20), NEW.price_micros_per_hour * (COALESCE(NEW.billed_until, NEW.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        cluster_rate = account_meters.cluster_rate + excluded.cluster_rate,
        cluster_high = account_meters.cluster_high + excluded.cluster_high,
        cluster_low = account_meters.cluster_low + excluded.cluster_low;
END;
CREATE TRIGGER tr_clusters_meter_leave AFTER UPDATE OF billing_started_at, billing_ended_at, billed_until, user_id, org_id, price_micros_per_hour ON clusters WHEN OLD.billing_started_at IS NOT NULL AND OLD.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, cluster_rate, cluster_high, cluster_low)
    VALUES (CASE WHEN OLD.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(OLD.org_id, OLD.user_id), 0,
            -OLD.price_micros_per_hour, -OLD.price_micros_per_hour * (COALESCE(OLD.billed_until, OLD.billing_started_at) >> 20), -OLD.price_micros_per_hour * (COALESCE(OLD.billed_until, OLD.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        cluster_rate = account_meters.cluster_rate + excluded.cluster_rate,
        cluster_high = account_meters.cluster_high + excluded.cluster_high,
        cluster_low = account_meters.cluster_low + excluded.cluster_low;
END;
CREATE TRIGGER tr_clusters_meter_enter AFTER UPDATE OF billing_started_at, billing_ended_at, billed_until, user_id, org_id, price_micros_per_hour ON clusters WHEN NEW.billing_started_at IS NOT NULL AND NEW.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, cluster_rate, cluster_high, cluster_low)
    VALUES (CASE WHEN NEW.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(NEW.org_id, NEW.user_id), 0,
            NEW.price_micros_per_hour, NEW.price_micros_per_hour * (COALESCE(NEW.billed_until, NEW.billing_started_at) >> 20), NEW.price_micros_per_hour * (COALESCE(NEW.billed_until, NEW.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        cluster_rate = account_meters.cluster_rate + excluded.cluster_rate,
        cluster_high = account_meters.cluster_high + excluded.cluster_high,
        cluster_low = account_meters.cluster_low + excluded.cluster_low;
END;
CREATE TRIGGER tr_clusters_meter_delete AFTER DELETE ON clusters WHEN OLD.billing_started_at IS NOT NULL AND OLD.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, cluster_rate, cluster_high, cluster_low)
    VALUES (CASE WHEN OLD.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(OLD.org_id, OLD.user_id), 0,
            -OLD.price_micros_per_hour, -OLD.price_micros_per_hour * (COALESCE(OLD.billed_until, OLD.billing_started_at) >> 20), -OLD.price_micros_per_hour * (COALESCE(OLD.billed_until, OLD.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        cluster_rate = account_meters.cluster_rate + excluded.cluster_rate,
        cluster_high = account_meters.cluster_high + excluded.cluster_high,
        cluster_low = account_meters.cluster_low + excluded.cluster_low;
END;

-- volumes: a metered row's old values leave its account's sums and its new values enter them.
CREATE TRIGGER tr_volumes_meter_insert AFTER INSERT ON volumes WHEN NEW.billing_started_at IS NOT NULL AND NEW.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, volume_gb, volume_high, volume_low)
    VALUES (CASE WHEN NEW.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(NEW.org_id, NEW.user_id), 0,
            NEW.size_gb, NEW.size_gb * (COALESCE(NEW.billed_until, NEW.billing_started_at) >> 20), NEW.size_gb * (COALESCE(NEW.billed_until, NEW.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        volume_gb = account_meters.volume_gb + excluded.volume_gb,
        volume_high = account_meters.volume_high + excluded.volume_high,
        volume_low = account_meters.volume_low + excluded.volume_low;
END;
CREATE TRIGGER tr_volumes_meter_leave AFTER UPDATE OF billing_started_at, billing_ended_at, billed_until, user_id, org_id, size_gb ON volumes WHEN OLD.billing_started_at IS NOT NULL AND OLD.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, volume_gb, volume_high, volume_low)
    VALUES (CASE WHEN OLD.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(OLD.org_id, OLD.user_id), 0,
            -OLD.size_gb, -OLD.size_gb * (COALESCE(OLD.billed_until, OLD.billing_started_at) >> 20), -OLD.size_gb * (COALESCE(OLD.billed_until, OLD.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        volume_gb = account_meters.volume_gb + excluded.volume_gb,
        volume_high = account_meters.volume_high + excluded.volume_high,
        volume_low = account_meters.volume_low + excluded.volume_low;
END;
CREATE TRIGGER tr_volumes_meter_enter AFTER UPDATE OF billing_started_at, billing_ended_at, billed_until, user_id, org_id, size_gb ON volumes WHEN NEW.billing_started_at IS NOT NULL AND NEW.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, volume_gb, volume_high, volume_low)
    VALUES (CASE WHEN NEW.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(NEW.org_id, NEW.user_id), 0,
            NEW.size_gb, NEW.size_gb * (COALESCE(NEW.billed_until, NEW.billing_started_at) >> 20), NEW.size_gb * (COALESCE(NEW.billed_until, NEW.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        volume_gb = account_meters.volume_gb + excluded.volume_gb,
        volume_high = account_meters.volume_high + excluded.volume_high,
        volume_low = account_meters.volume_low + excluded.volume_low;
END;
CREATE TRIGGER tr_volumes_meter_delete AFTER DELETE ON volumes WHEN OLD.billing_started_at IS NOT NULL AND OLD.billing_ended_at IS NULL
BEGIN
    INSERT INTO account_meters (account_kind, account_id, shard, volume_gb, volume_high, volume_low)
    VALUES (CASE WHEN OLD.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(OLD.org_id, OLD.user_id), 0,
            -OLD.size_gb, -OLD.size_gb * (COALESCE(OLD.billed_until, OLD.billing_started_at) >> 20), -OLD.size_gb * (COALESCE(OLD.billed_until, OLD.billing_started_at) & 1048575))
    ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
        volume_gb = account_meters.volume_gb + excluded.volume_gb,
        volume_high = account_meters.volume_high + excluded.volume_high,
        volume_low = account_meters.volume_low + excluded.volume_low;
END;

-- The sums for meters already running when this migration runs.
INSERT INTO account_meters (account_kind, account_id, shard, cluster_rate, cluster_high, cluster_low)
SELECT CASE WHEN org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(org_id, user_id), 0, SUM(price_micros_per_hour),
       SUM(price_micros_per_hour * (COALESCE(billed_until, billing_started_at) >> 20)),
       SUM(price_micros_per_hour * (COALESCE(billed_until, billing_started_at) & 1048575))
FROM clusters WHERE billing_started_at IS NOT NULL AND billing_ended_at IS NULL
GROUP BY CASE WHEN org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(org_id, user_id);
INSERT INTO account_meters (account_kind, account_id, shard, volume_gb, volume_high, volume_low)
SELECT CASE WHEN org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(org_id, user_id), 0, SUM(size_gb),
       SUM(size_gb * (COALESCE(billed_until, billing_started_at) >> 20)),
       SUM(size_gb * (COALESCE(billed_until, billing_started_at) & 1048575))
FROM volumes WHERE billing_started_at IS NOT NULL AND billing_ended_at IS NULL
GROUP BY CASE WHEN org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(org_id, user_id)
ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
    volume_gb = excluded.volume_gb, volume_high = excluded.volume_high, volume_low = excluded.volume_low;

-- The sum these indexes served is gone.
DROP INDEX ix_clusters_metering_user;
DROP INDEX ix_clusters_metering_org;
