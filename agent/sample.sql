-- One metrics sample as a single line of JSON (jsonb prints without
-- newlines). Variables from agent.sh: instance, top, db_size, with_size.
-- Statistics views only (pg_stat_*, pg_locks, pg_catalog); the agent's own
-- backend is excluded.
SELECT jsonb_build_object(
    'ts', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'v', 2,
    'instance', :'instance',
    'up', true,
    'postmaster_start', to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'connections', (
        SELECT jsonb_build_object(
            'total', count(*),
            'active', count(*) FILTER (WHERE state = 'active'),
            'idle', count(*) FILTER (WHERE state = 'idle'),
            'idle_in_transaction', count(*) FILTER (WHERE state LIKE 'idle in transaction%'),
            'waiting', count(*) FILTER (WHERE wait_event_type = 'Lock'),
            'max', current_setting('max_connections')::int)
        FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()),
    'counters', (
        SELECT jsonb_build_object(
            'xact_commit', coalesce(sum(xact_commit), 0),
            'xact_rollback', coalesce(sum(xact_rollback), 0),
            'blks_hit', coalesce(sum(blks_hit), 0),
            'blks_read', coalesce(sum(blks_read), 0),
            'tup_returned', coalesce(sum(tup_returned), 0),
            'tup_fetched', coalesce(sum(tup_fetched), 0),
            'tup_inserted', coalesce(sum(tup_inserted), 0),
            'tup_updated', coalesce(sum(tup_updated), 0),
            'tup_deleted', coalesce(sum(tup_deleted), 0),
            'deadlocks', coalesce(sum(deadlocks), 0),
            'temp_bytes', coalesce(sum(temp_bytes), 0))
        FROM pg_stat_database WHERE datname IS NOT NULL),
    'db_size_bytes', CASE WHEN :'with_size' = 'on'
                          THEN pg_database_size(current_database())
                          ELSE nullif(:'db_size', 'null')::bigint END,
    'locks', (
        SELECT jsonb_build_object(
            'by_mode', coalesce((SELECT jsonb_object_agg(mode, n)
                                   FROM (SELECT mode, count(*) AS n FROM pg_locks
                                          WHERE pid IS DISTINCT FROM pg_backend_pid() GROUP BY mode) m), '{}'),
            'waiting', (SELECT count(*) FROM pg_locks WHERE NOT granted),
            'blocked_backends', (SELECT count(*) FROM pg_stat_activity
                                  WHERE cardinality(pg_blocking_pids(pid)) > 0))),
    'longest_query_seconds', (
        SELECT coalesce(round(max(extract(epoch FROM clock_timestamp() - query_start))::numeric, 3), 0)
        FROM pg_stat_activity
        WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()),
    'longest_transaction_seconds', (
        SELECT coalesce(round(max(extract(epoch FROM clock_timestamp() - xact_start))::numeric, 3), 0)
        FROM pg_stat_activity
        WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid()),
    'tables', (
        SELECT coalesce(jsonb_agg(t ORDER BY t.size_bytes DESC), '[]')
        FROM (SELECT s.schemaname AS schema, s.relname AS name,
                     -- pg_total_relation_size() waits for a table's lock:
                     -- behind an ACCESS EXCLUSIVE lock (held or queued) the
                     -- catalog's estimate stands in, so a sample never blocks.
                     CASE WHEN EXISTS (SELECT 1 FROM pg_locks l
                                        WHERE l.relation = s.relid AND l.mode = 'AccessExclusiveLock')
                          THEN c.relpages::bigint * current_setting('block_size')::bigint
                          ELSE pg_total_relation_size(s.relid) END AS size_bytes,
                     s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
                     s.seq_scan AS seq_scans, coalesce(s.idx_scan, 0) AS idx_scans
                FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
               ORDER BY 3 DESC
               LIMIT :top) t),
    -- Schema 2: the WAL archiver (archiving fails while its last failure is
    -- newer than its last success).
    'archiver', (
        SELECT jsonb_build_object(
            'mode', current_setting('archive_mode'),
            'archived_count', archived_count,
            'last_archived_wal', last_archived_wal,
            'last_archived_time', to_char(last_archived_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'failed_count', failed_count,
            'last_failed_wal', last_failed_wal,
            'last_failed_time', to_char(last_failed_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        FROM pg_stat_archiver),
    'scrape_seconds', round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 3),
    'error', NULL
)::text;
