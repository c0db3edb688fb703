-- Which of an account's 16 meter rows (0006) a change goes to. The engine's PostgreSQL committers
-- each set openpool.meter_shard on their connection to a row of their own: a committer holds its
-- batch's locks until the batch commits, and two batches taking an account's rows in different
-- orders would deadlock, each waiting for the other's commit. Any other writer keeps picking a row
-- at random.
CREATE FUNCTION meter_shard() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT COALESCE(NULLIF(current_setting('openpool.meter_shard', true), '')::bigint, floor(random() * 16)::bigint)
$$;

-- clusters: a metered row's old values leave its account's sums and its new values enter them.
CREATE OR REPLACE FUNCTION meter_clusters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.billing_started_at IS NOT NULL AND OLD.billing_ended_at IS NULL THEN
        INSERT INTO account_meters (account_kind, account_id, shard, cluster_rate, cluster_high, cluster_low)
        VALUES (CASE WHEN OLD.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(OLD.org_id, OLD.user_id), meter_shard(),
                -OLD.price_micros_per_hour, -OLD.price_micros_per_hour * (COALESCE(OLD.billed_until, OLD.billing_started_at)::bigint >> 20), -OLD.price_micros_per_hour * (COALESCE(OLD.billed_until, OLD.billing_started_at) & 1048575))
        ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
            cluster_rate = account_meters.cluster_rate + EXCLUDED.cluster_rate,
            cluster_high = account_meters.cluster_high + EXCLUDED.cluster_high,
            cluster_low = account_meters.cluster_low + EXCLUDED.cluster_low;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.billing_started_at IS NOT NULL AND NEW.billing_ended_at IS NULL THEN
        INSERT INTO account_meters (account_kind, account_id, shard, cluster_rate, cluster_high, cluster_low)
        VALUES (CASE WHEN NEW.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(NEW.org_id, NEW.user_id), meter_shard(),
                NEW.price_micros_per_hour, NEW.price_micros_per_hour * (COALESCE(NEW.billed_until, NEW.billing_started_at)::bigint >> 20), NEW.price_micros_per_hour * (COALESCE(NEW.billed_until, NEW.billing_started_at) & 1048575))
        ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
            cluster_rate = account_meters.cluster_rate + EXCLUDED.cluster_rate,
            cluster_high = account_meters.cluster_high + EXCLUDED.cluster_high,
            cluster_low = account_meters.cluster_low + EXCLUDED.cluster_low;
    END IF;
    RETURN NULL;
END
$$;

-- volumes: a metered row's old values leave its account's sums and its new values enter them.
CREATE OR REPLACE FUNCTION meter_volumes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.billing_started_at IS NOT NULL AND OLD.billing_ended_at IS NULL THEN
        INSERT INTO account_meters (account_kind, account_id, shard, volume_gb, volume_high, volume_low)
        VALUES (CASE WHEN OLD.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(OLD.org_id, OLD.user_id), meter_shard(),
                -OLD.size_gb, -OLD.size_gb * (COALESCE(OLD.billed_until, OLD.billing_started_at)::bigint >> 20), -OLD.size_gb * (COALESCE(OLD.billed_until, OLD.billing_started_at) & 1048575))
        ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
            volume_gb = account_meters.volume_gb + EXCLUDED.volume_gb,
            volume_high = account_meters.volume_high + EXCLUDED.volume_high,
            volume_low = account_meters.volume_low + EXCLUDED.volume_low;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.billing_started_at IS NOT NULL AND NEW.billing_ended_at IS NULL THEN
        INSERT INTO account_meters (account_kind, account_id, shard, volume_gb, volume_high, volume_low)
        VALUES (CASE WHEN NEW.org_id IS NULL THEN 'user' ELSE 'org' END, COALESCE(NEW.org_id, NEW.user_id), meter_shard(),
                NEW.size_gb, NEW.size_gb * (COALESCE(NEW.billed_until, NEW.billing_started_at)::bigint >> 20), NEW.size_gb * (COALESCE(NEW.billed_until, NEW.billing_started_at) & 1048575))
        ON CONFLICT (account_kind, account_id, shard) DO UPDATE SET
            volume_gb = account_meters.volume_gb + EXCLUDED.volume_gb,
            volume_high = account_meters.volume_high + EXCLUDED.volume_high,
            volume_low = account_meters.volume_low + EXCLUDED.volume_low;
    END IF;
    RETURN NULL;
END
$$;
