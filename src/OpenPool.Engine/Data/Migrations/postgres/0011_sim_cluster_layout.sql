-- PostgreSQL twin of sqlite/0011_sim_cluster_layout.sql.
-- What a simulated node shows of its cluster: its place in it (node-1, node-2, … in the order the
-- claim listed the instance ids) and the volumes the cluster has mounted, as the provider learned
-- them from its attach and detach orders (the provider does not read the engine's own tables).
ALTER TABLE sim_nodes ADD COLUMN node_index INTEGER;

CREATE TABLE sim_attachments (
    cluster_id  TEXT NOT NULL,
    volume_id   TEXT NOT NULL,
    PRIMARY KEY (cluster_id, volume_id)
);
