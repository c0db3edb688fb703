-- PostgreSQL twin of sqlite/0010_node_ssh_access.sql.
-- How each node is reached over SSH, as its provider reported it when the node came up: GET /ssh
-- renders its command from these, and a restarted engine shows the same host key.
ALTER TABLE instances ADD COLUMN ssh_host TEXT;
ALTER TABLE instances ADD COLUMN ssh_port INTEGER;
ALTER TABLE instances ADD COLUMN ssh_user TEXT;
ALTER TABLE instances ADD COLUMN ssh_host_key_fingerprint TEXT;

-- The simulated node's SSH port on the engine's host, kept with the node so a restart listens on the
-- same one. A port belongs to at most one node that is not yet released.
ALTER TABLE sim_nodes ADD COLUMN ssh_port INTEGER;
CREATE UNIQUE INDEX ux_sim_nodes_ssh_port ON sim_nodes(ssh_port)
    WHERE ssh_port IS NOT NULL AND state IN ('provisioning', 'running');

-- What the node's SSH files (its home, identity and /etc/ssh) are made from at its first login, which
-- may come after an engine restart: the tenant (whose uid the node's user has) and the cluster's
-- public keys, one OpenSSH line each. Nothing is written for a node before then.
ALTER TABLE sim_nodes ADD COLUMN ssh_tenant TEXT;
ALTER TABLE sim_nodes ADD COLUMN ssh_authorized_keys TEXT;
