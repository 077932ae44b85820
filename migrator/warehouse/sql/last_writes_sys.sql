-- The newest write per table, from SYS_QUERY_DETAIL's insert and delete steps (an UPDATE logs
-- both); falls back to stl_insert/stl_delete where the view is missing.
select table_id, max(end_time) from sys_query_detail
where step_name in ('insert', 'delete') and table_id > 0 group by table_id
