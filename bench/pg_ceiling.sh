#!/usr/bin/env bash
# What PostgreSQL alone allows for agent jobs on this machine: pgbench (a client that costs
# next to nothing) sends each job's round trips in the shape the server sends them, on a
# scratch database, with no server, HTTP or GraphQL in the way. The `cargo bench --bench jobs`
# throughput figure cannot pass the first line's; the second is the ceiling if workers wrote
# many jobs' steps and ends together (about two round trips a job), the start left as it is.
#
#     bench/pg_ceiling.sh                      # 15 s each, 16 and 32 clients
#     SECONDS_EACH=30 CLIENTS="32 64" bench/pg_ceiling.sh
#
# Uses TEST_POSTGRES_URL's server (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail

admin=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
database=tenantql_pg_ceiling
scratch=${admin%/*}/$database
seconds=${SECONDS_EACH:-15}
clients=${CLIENTS:-16 32}
work=$(mktemp -d)
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1; rm -rf "$work"' EXIT

psql -q "$admin" -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database" 2>/dev/null
psql -q "$scratch" <<'SQL'
CREATE TABLE memberships (organization_id int, user_id int, role text, PRIMARY KEY (organization_id, user_id));
INSERT INTO memberships SELECT o, o + u, 'OWNER' FROM generate_series(1, 50) o, generate_series(0, 1) u;
CREATE TABLE agents (id int PRIMARY KEY);
INSERT INTO agents SELECT generate_series(1, 50);
CREATE TABLE usage_records (organization_id int, cost_cents int);
CREATE INDEX ON usage_records (organization_id);
CREATE TABLE agent_jobs (id bigint PRIMARY KEY, organization_id int, status text, last_seq bigint);
CREATE TABLE agent_job_events (id bigserial PRIMARY KEY, job_id bigint, seq bigint, message text,
  created_at timestamptz DEFAULT now(), UNIQUE (job_id, seq));
CREATE TABLE audit_log (id bigserial PRIMARY KEY, organization_id int, action text,
  created_at timestamptz DEFAULT now());
SQL

# The start, as `startAgentJob` runs it: the caller's membership, then one transaction with the
# tenant settings, the project role, the agent, the budget, the job, its event and the audit row.
cat >"$work/start.sql" <<'SQL'
\set job random(1, 9000000000000000000)
\set org random(1, 50)
SELECT role FROM memberships WHERE organization_id = :org AND user_id = :org;
BEGIN;
SELECT set_config('app.organization_id', :org::text, true);
SELECT role FROM memberships WHERE organization_id = :org AND user_id = :org + 1;
SELECT id FROM agents WHERE id = :org;
SELECT coalesce(sum(cost_cents), 0) FROM usage_records WHERE organization_id = :org;
INSERT INTO agent_jobs VALUES (:job, :org, 'QUEUED', 1);
INSERT INTO agent_job_events (job_id, seq, message) VALUES (:job, 1, 'queued');
INSERT INTO audit_log (organization_id, action) VALUES (:org, 'startAgentJob');
COMMIT;
SQL

# The claim (the server shares one among a batch of jobs; here each job has its own), then one
# transaction per change: the echo runner's one step and the finish.
cp "$work/start.sql" "$work/job.sql"
cat >>"$work/job.sql" <<'SQL'
BEGIN;
UPDATE agent_jobs SET status = 'RUNNING', last_seq = last_seq + 1 WHERE id = :job RETURNING last_seq;
INSERT INTO agent_job_events (job_id, seq, message) VALUES (:job, 2, 'running');
COMMIT;
BEGIN;
SELECT set_config('app.organization_id', :org::text, true);
UPDATE agent_jobs SET last_seq = last_seq + 1 WHERE id = :job RETURNING last_seq;
INSERT INTO agent_job_events (job_id, seq, message) VALUES (:job, 3, 'step 1');
COMMIT;
BEGIN;
SELECT set_config('app.organization_id', :org::text, true);
UPDATE agent_jobs SET status = 'SUCCEEDED', last_seq = last_seq + 1 WHERE id = :job RETURNING last_seq;
INSERT INTO agent_job_events (job_id, seq, message) VALUES (:job, 4, 'succeeded');
COMMIT;
SQL

cp "$work/start.sql" "$work/batched.sql"
printf 'SELECT 1;\nSELECT 1;\n' >>"$work/batched.sql"

for script in job batched; do
  for count in $clients; do
    psql -q "$scratch" -c "TRUNCATE agent_jobs, agent_job_events, audit_log"
    tps=$(pgbench -n -M prepared -c "$count" -j 2 -T "$seconds" -f "$work/$script.sql" "$scratch" |
      sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    case $script in
      job) what="a job's round trips, its claim not shared (24 statements)" ;;
      batched) what="the start plus two round trips (workers' writes batched)" ;;
    esac
    printf 'PostgreSQL alone, %s, %s clients: %.0f jobs/s\n' "$what" "$count" "$tps"
  done
done
