-- The sessions that started since a point in time, one row each, from STL_CONNECTION_LOG
-- ("initiating session": user, remote host, application name) with what each ran, from
-- STL_QUERY (the session's pid, from its start until the pid's next session) and whether a
-- statement wrote (a row in STL_INSERT or STL_DELETE). The caller's own session and the
-- migrator's own sessions (application name given as a parameter) are left out.
-- Parameters: since (UTC, no zone), the migrator's application name.
-- STL_CONNECTION_LOG and other users' STL rows are visible only to a superuser.
select trim(c.username), trim(c.remotehost), trim(c.application_name), c.recordtime,
       count(q.query), count(w.query), max(q.endtime)
from (select pid, username, remotehost, application_name, recordtime,
             lead(recordtime) over (partition by pid order by recordtime) as next_time
      from stl_connection_log where event = 'initiating session') c
left join stl_query q
       on q.pid = c.pid and q.starttime >= c.recordtime and (c.next_time is null or q.starttime < c.next_time)
left join (select query from stl_insert union select query from stl_delete) w on w.query = q.query
where c.recordtime >= %s
  and c.pid <> pg_backend_pid()
  and coalesce(trim(c.application_name), '') <> %s
group by c.pid, c.username, c.remotehost, c.application_name, c.recordtime
order by c.recordtime
