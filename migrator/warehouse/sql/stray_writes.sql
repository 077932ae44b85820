-- Writes to tables after a point in time (the cutover's rename of this cluster away), one row
-- per statement and table: STL_INSERT / STL_DELETE (a row per slice and step: summed), with the
-- sender from STL_QUERY (userid → PG_USER) and the client address of its session from
-- STL_CONNECTION_LOG ("initiating session" of that pid, the latest before the statement; a
-- pid is reused, so the next session of the pid bounds it). A table gone from SVV_TABLE_INFO
-- (dropped, or temporary) keeps its id and no name. The caller's own session is left out, and
-- the migrator's bookkeeping schema. Parameters: since, since (UTC, no zone), the
-- bookkeeping schema.
-- STL_CONNECTION_LOG and other users' STL rows are visible only to a superuser.
select w.tbl, trim(t.schema), trim(t."table"), w.query, w.kind, w.rows, w.endtime,
       trim(u.usename), trim(q.querytxt), trim(c.remotehost), trim(c.remoteport), q.pid
from (select query, tbl, 'insert' as kind, sum(rows) as rows, max(endtime) as endtime
      from stl_insert where endtime >= %s group by query, tbl
      union all
      select query, tbl, 'delete' as kind, sum(rows) as rows, max(endtime) as endtime
      from stl_delete where endtime >= %s group by query, tbl) w
left join svv_table_info t on t.table_id = w.tbl
left join stl_query q on q.query = w.query
left join pg_user u on u.usesysid = q.userid
left join (select pid, remotehost, remoteport, recordtime,
                  lead(recordtime) over (partition by pid order by recordtime) as next_time
           from stl_connection_log where event = 'initiating session') c
       on c.pid = q.pid and c.recordtime <= q.starttime and (c.next_time is null or c.next_time > q.starttime)
where (q.pid is null or q.pid <> pg_backend_pid())
  and coalesce(trim(t.schema), '') <> %s
order by w.endtime, w.query, w.tbl, w.kind
