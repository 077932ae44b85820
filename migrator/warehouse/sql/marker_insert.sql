-- A load's marker row, in the load's own transaction, right after its COPY. The last
-- parameter is the row count the UNLOAD wrote: unless pg_last_copy_count() (this session's
-- last COPY) equals it, the division by zero fails the statement [SQLSTATE 22012] and the
-- caller rolls the load back. The check rides on this insert rather than on a separate
-- `select pg_last_copy_count()`: one round trip per load fewer (PG_LAST_COPY_COUNT is not
-- among Redshift's leader-node-only functions, so it may be used in an INSERT).
insert into {marker} (migration, schema_name, table_name, attempt, manifest, rows, loaded_at)
values (%s, %s, %s, %s, %s, pg_last_copy_count() / (case when pg_last_copy_count() = %s then 1 else 0 end),
        getdate())
