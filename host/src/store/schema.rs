//! The database schema as numbered migrations. `PRAGMA user_version` records how many
//! have run; each runs once, in a transaction, in order. Add a migration at the end;
//! never edit one that has shipped.
//!
//! Migration 1 creates every table with `IF NOT EXISTS`, so a database written by a
//! ztpd from before migrations were numbered is adopted as it is.

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: kv, tenant secrets, jobs, events, host keys, policy versions, audit log, webhook
    // outbox, DHCP leases.
    "
CREATE TABLE IF NOT EXISTS kv (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS tenant_secrets (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          TEXT NOT NULL,
    device          TEXT NOT NULL,
    serial          TEXT,
    mac             TEXT,
    source_ip       TEXT NOT NULL,
    model           TEXT,
    state           TEXT NOT NULL,
    step            INTEGER NOT NULL DEFAULT 0,
    plan            TEXT,
    config          TEXT,
    policy_version  TEXT,
    error           TEXT,
    wait_until_ms   INTEGER,
    pushes          INTEGER NOT NULL DEFAULT 0,
    transcript      TEXT,
    request         TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_running_per_device
    ON jobs (tenant, device) WHERE state NOT IN ('done', 'failed');
CREATE INDEX IF NOT EXISTS jobs_by_device ON jobs (tenant, device, id);
CREATE TABLE IF NOT EXISTS job_events (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    at_ms   INTEGER NOT NULL,
    state   TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, at_ms);
CREATE TABLE IF NOT EXISTS host_keys (
    tenant  TEXT NOT NULL,
    address TEXT NOT NULL,
    key     TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, address)
);
CREATE TABLE IF NOT EXISTS policy_versions (
    tenant      TEXT NOT NULL,
    slot        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, slot, hash)
);
CREATE TABLE IF NOT EXISTS policy_activations (
    tenant TEXT NOT NULL,
    slot   TEXT NOT NULL,
    hash   TEXT NOT NULL,
    actor  TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS policy_activations_by_slot ON policy_activations (tenant, slot, at_ms);
CREATE TABLE IF NOT EXISTS audit_log (
    at_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    tenant TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    hash   TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT NOT NULL,
    webhook      TEXT NOT NULL,
    event        TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_ms      INTEGER NOT NULL,
    last_error   TEXT,
    created_ms   INTEGER NOT NULL,
    delivered_ms INTEGER
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (state, next_ms);
CREATE TABLE IF NOT EXISTS dhcp_leases (
    tenant       TEXT NOT NULL,
    subnet       TEXT NOT NULL,
    mac          TEXT NOT NULL,
    ip           TEXT NOT NULL,
    state        TEXT NOT NULL,
    hostname     TEXT,
    vendor_class TEXT,
    bootfile     TEXT,
    leased_ms    INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    PRIMARY KEY (subnet, mac)
);
CREATE UNIQUE INDEX IF NOT EXISTS dhcp_leases_by_ip ON dhcp_leases (ip);
CREATE INDEX IF NOT EXISTS dhcp_leases_by_mac ON dhcp_leases (mac);
",
    // 2: per-tenant kv usage, kept in the same transaction as every kv write, so quotas
    // are checked without counting the table.
    "
CREATE TABLE IF NOT EXISTS kv_usage (
    tenant TEXT PRIMARY KEY,
    keys   INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
);
INSERT OR REPLACE INTO kv_usage (tenant, keys, bytes)
    SELECT tenant, COUNT(*), COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0)
    FROM kv GROUP BY tenant;
",
    // 3: call-back claims (a serial bound to the address and token nonce of its first
    // accepted call-back; later claims wait as contenders), the nonce a job was started
    // with, and SSH host keys per device.
    "
CREATE TABLE IF NOT EXISTS claims (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT NOT NULL,
    serial     TEXT NOT NULL,
    source_ip  TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    state      TEXT NOT NULL,
    job_id     INTEGER,
    request    TEXT,
    created_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS claims_by_nonce ON claims (tenant, nonce);
CREATE INDEX IF NOT EXISTS claims_by_serial ON claims (tenant, serial, state);
ALTER TABLE jobs ADD COLUMN nonce TEXT;
CREATE TABLE IF NOT EXISTS device_host_keys (
    tenant  TEXT NOT NULL,
    device  TEXT NOT NULL,
    key     TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, device)
);
",
];
