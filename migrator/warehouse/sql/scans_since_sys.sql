-- Reads per table since a time, from SYS_QUERY_DETAIL (its scan steps name the permanent table):
-- the SYS monitoring views are the ones AWS recommends, and they cover queries that ran on
-- concurrency-scaling clusters too. inventory.read_usage falls back to stl_scan without it.
select table_id, count(distinct query_id) from sys_query_detail
where step_name = 'scan' and table_id > 0 and start_time >= %s group by table_id
