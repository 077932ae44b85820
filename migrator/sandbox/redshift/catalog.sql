-- Redshift system catalog emulation, installed into each emulated cluster's database.
-- Idempotent: metadata tables survive a re-install; views and functions are replaced.
-- Everything lives in schema pg_sandbox, which install() appends to the database's
-- search_path, so unqualified names (svv_table_info, fnv_hash, getdate) resolve as on
-- Redshift. pg_catalog is searched first implicitly, so no name here shadows one of
-- PostgreSQL's: pg_user and pg_group are PostgreSQL's own (same core columns as
-- Redshift's; CREATE GROUP makes a NOLOGIN role, which is exactly what pg_group lists).

create schema if not exists pg_sandbox;
grant usage on schema pg_sandbox to public;

-- ---------------------------------------------------------------- metadata (DDL attributes)
-- Keyed by the table's oid and column attnum so renames keep their attributes; a sql_drop
-- event trigger removes rows of dropped objects.
create table if not exists pg_sandbox.rs_table (
    reloid oid primary key,
    diststyle text not null default 'AUTO' check (diststyle in ('AUTO', 'EVEN', 'KEY', 'ALL')),
    distkey_attnum int2,
    sortkey_kind text check (sortkey_kind in ('COMPOUND', 'INTERLEAVED', 'AUTO')),
    sortkey_attnums int2[] not null default '{}',
    encode_auto boolean not null default true,
    backup boolean not null default true,
    create_time timestamp not null default (now() at time zone 'utc')
);
create table if not exists pg_sandbox.rs_column (
    reloid oid not null,
    attnum int2 not null,
    encoding text,
    identity_seed bigint,
    identity_step bigint,
    primary key (reloid, attnum)
);
create table if not exists pg_sandbox.rs_view (
    reloid oid primary key,
    late_binding boolean not null
);
create table if not exists pg_sandbox.cluster_info (
    singleton boolean primary key default true check (singleton),
    cluster_id text not null,
    slices int not null default 2,
    capacity_mb bigint not null default 163840
);
-- Slices per node: the node type's default ("Node type details"); slices = nodes x this.
alter table pg_sandbox.cluster_info add column if not exists slices_per_node int not null default 2;

-- ---------------------------------------------------------------- system logs (written by syslog.py)
create sequence if not exists pg_sandbox.query_seq start with 1000;

create table if not exists pg_sandbox.query_log (
    query int primary key,
    userid int not null,
    user_name text not null,
    db_name text not null,
    pid int not null,
    xid bigint,
    starttime timestamp not null,
    endtime timestamp not null,
    aborted int not null default 0,
    label text not null default 'default',
    querytxt text not null
);
create table if not exists pg_sandbox.stl_scan (
    userid int, query int, slice int, segment int, step int,
    starttime timestamp, endtime timestamp, tasknum int,
    rows bigint, bytes bigint, fetches bigint, type int, tbl int,
    is_rrscan char(1), is_delayed_scan char(1), rows_pre_filter bigint,
    rows_pre_user_filter bigint, perm_table_name char(136),
    is_rlf_scan char(1), is_rlf_scan_reason int, num_em_blocks int, checksum bigint,
    runtime_filtering char(1), scan_region int, num_sortkey_as_predicate int
);
create table if not exists pg_sandbox.stl_insert (
    userid int, query int, slice int, segment int, step int,
    starttime timestamp, endtime timestamp, tasknum int, rows int, tbl int,
    inserted_mega_value char(1), use_staging_table char(1)
);
create table if not exists pg_sandbox.stl_delete (
    userid int, query int, slice int, segment int, step int,
    starttime timestamp, endtime timestamp, tasknum int, rows int, tbl int
);
create table if not exists pg_sandbox.stl_load_commits (
    userid int, query int, slice int, name char(256), filename char(256),
    byte_offset int, lines_scanned int, errors int, curtime timestamp, status int,
    file_format char(16), is_partial int, start_offset bigint, copy_job_id bigint
);
create table if not exists pg_sandbox.stl_load_errors (
    userid int, slice int, tbl int, starttime timestamp, session int, query int,
    filename char(256), line_number bigint, colname char(127), type char(10),
    col_length char(10), position int, raw_line char(1024), raw_field_value char(1024),
    err_code int, err_reason char(100), is_partial int, start_offset bigint, copy_job_id bigint
);
create table if not exists pg_sandbox.stl_unload_log (
    userid int, query int, slice int, pid int, path char(1280),
    start_time timestamp, end_time timestamp, line_count bigint, transfer_size bigint,
    file_format char(10)
);
-- "STL_CONNECTION_LOG": authentication attempts, connections and disconnections; visible only
-- to superusers (the policy below). Written by syslog.py from the proxy's session events.
create table if not exists pg_sandbox.stl_connection_log (
    event char(50), recordtime timestamp, remotehost char(45), remoteport char(32), pid int,
    dbname char(50), username char(50), authmethod char(32), duration int, sslversion char(50),
    sslcipher char(128), mtu int, sslcompression char(64), sslexpansion char(64), iamauthguid char(36),
    application_name char(250), os_version char(64), driver_version char(64), plugin_name char(32),
    protocol_version int, sessionid char(36), compression char(128)
);
grant select on all tables in schema pg_sandbox to public;

-- ---------------------------------------------------------------- visibility
-- "Visibility of data in system tables and views": superusers see every row; a regular
-- user sees only the rows of its own queries in STL/SVL, and nothing of SVV_TABLE_INFO
-- and the STV tables. Superusers (and the table owner, the sandbox admin) bypass RLS.
create or replace function pg_sandbox.is_superuser() returns boolean
language sql stable as $$ select coalesce((select rolsuper from pg_catalog.pg_roles where rolname = current_user), false) $$;
create or replace function pg_sandbox.sees_user(uid int) returns boolean
language sql stable as $$
    select coalesce((select rolsuper or oid::int = uid from pg_catalog.pg_roles where rolname = current_user), false) $$;

do $$
declare
    t text;
begin
    foreach t in array array['query_log', 'stl_scan', 'stl_insert', 'stl_delete', 'stl_load_commits',
                             'stl_load_errors', 'stl_unload_log'] loop
        execute format('alter table pg_sandbox.%I enable row level security', t);
        if not exists (select 1 from pg_policy where polrelid = format('pg_sandbox.%I', t)::regclass
                       and polname = 'own_queries') then
            execute format('create policy own_queries on pg_sandbox.%I for select using (pg_sandbox.sees_user(userid))', t);
        end if;
    end loop;
    alter table pg_sandbox.stl_connection_log enable row level security;
    if not exists (select 1 from pg_policy where polrelid = 'pg_sandbox.stl_connection_log'::regclass
                   and polname = 'superusers_only') then
        create policy superusers_only on pg_sandbox.stl_connection_log for select using (pg_sandbox.is_superuser());
    end if;
end $$;

-- ---------------------------------------------------------------- deleted rows (until VACUUM)
-- Redshift marks deleted (and updated-away) rows and keeps counting them in
-- SVV_TABLE_INFO.tbl_rows until VACUUM reclaims them; PostgreSQL's dead tuples are pruned
-- at its own pace, so the count is kept here: one row per DELETE/UPDATE statement.
create table if not exists pg_sandbox.rs_deleted (
    reloid oid not null,
    n bigint not null
);
create index if not exists rs_deleted_reloid on pg_sandbox.rs_deleted (reloid);

create or replace function pg_sandbox.count_deleted() returns trigger language plpgsql
security definer set search_path = pg_catalog as $$
declare
    k bigint;
begin
    if tg_op = 'TRUNCATE' then
        delete from pg_sandbox.rs_deleted where reloid = tg_relid;
        return null;
    end if;
    select count(*) into k from old_rows;
    if k > 0 then
        insert into pg_sandbox.rs_deleted (reloid, n) values (tg_relid, k);
    end if;
    return null;
end $$;

create or replace function pg_sandbox.track_deletes(rel regclass) returns void language plpgsql
security definer set search_path = pg_catalog as $$
begin
    if exists (select 1 from pg_trigger where tgrelid = rel and tgname = 'pg_sandbox_deleted') then
        return;
    end if;
    execute format('create trigger pg_sandbox_deleted after delete on %s referencing old table as old_rows '
                   'for each statement execute function pg_sandbox.count_deleted()', rel);
    execute format('create trigger pg_sandbox_updated after update on %s referencing old table as old_rows '
                   'for each statement execute function pg_sandbox.count_deleted()', rel);
    execute format('create trigger pg_sandbox_truncated after truncate on %s '
                   'for each statement execute function pg_sandbox.count_deleted()', rel);
end $$;

create or replace function pg_sandbox.on_create_table() returns event_trigger language plpgsql
security definer set search_path = pg_catalog as $$
declare
    obj record;
begin
    for obj in select * from pg_event_trigger_ddl_commands() loop
        if obj.object_type = 'table' and obj.schema_name is distinct from 'pg_sandbox'
           and (select relkind from pg_class where oid = obj.objid) = 'r' then
            perform pg_sandbox.track_deletes(obj.objid::regclass);
        end if;
    end loop;
end $$;

do $$
declare
    r record;
begin
    if not exists (select 1 from pg_event_trigger where evtname = 'pg_sandbox_on_create_table') then
        create event trigger pg_sandbox_on_create_table on ddl_command_end
            when tag in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
            execute function pg_sandbox.on_create_table();
    end if;
    -- Tables that predate the install (a restore) are tracked too.
    for r in select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'pg_sandbox', 'pg_toast')
               and n.nspname not like 'pg\_temp\_%' and n.nspname not like 'pg\_toast\_temp\_%' loop
        perform pg_sandbox.track_deletes(r.oid::regclass);
    end loop;
end $$;

-- Called by the dialect's VACUUM (not SORT ONLY): the marked rows are reclaimed.
-- Like VACUUM itself, only tables the (session) user owns, or all for a superuser.
create or replace function pg_sandbox.vacuumed(rel regclass) returns void language sql
security definer set search_path = pg_catalog as $$
    delete from pg_sandbox.rs_deleted d
    where (rel is null or d.reloid = rel)
      and exists (select 1 from pg_class c join pg_roles r on r.rolname = session_user
                  where c.oid = d.reloid and (r.rolsuper or pg_has_role(session_user, c.relowner, 'MEMBER')));
$$;

-- ---------------------------------------------------------------- housekeeping
-- Security definer: the trigger fires for whichever user drops, and only we write metadata.
create or replace function pg_sandbox.on_drop() returns event_trigger language plpgsql
security definer set search_path = pg_catalog as $$
declare
    obj record;
begin
    for obj in select * from pg_event_trigger_dropped_objects() loop
        if obj.object_type in ('table', 'view') then
            delete from pg_sandbox.rs_table where reloid = obj.objid;
            delete from pg_sandbox.rs_column where reloid = obj.objid;
            delete from pg_sandbox.rs_view where reloid = obj.objid;
            delete from pg_sandbox.rs_deleted where reloid = obj.objid;
        end if;
    end loop;
end $$;

do $$
begin
    if not exists (select 1 from pg_event_trigger where evtname = 'pg_sandbox_on_drop') then
        create event trigger pg_sandbox_on_drop on sql_drop execute function pg_sandbox.on_drop();
    end if;
end $$;

-- Called by the dialect in the client's transaction right after the PostgreSQL DDL ran.
-- Column names arrive as written (already case-folded by the dialect); unknown ones fail
-- the statement, as Redshift rejects a DISTKEY/SORTKEY naming a missing column.
create or replace function pg_sandbox.attnum_of(rel regclass, col name) returns int2
language plpgsql stable as $$
declare
    n int2;
begin
    select attnum into n from pg_attribute where attrelid = rel and attname = col and attnum > 0 and not attisdropped;
    if n is null then
        raise exception 'column "%" named in DISTKEY, SORTKEY or ENCODE does not exist', col using errcode = '42703';
    end if;
    return n;
end $$;

create or replace function pg_sandbox.record_table(
    rel regclass, p_diststyle text, p_distkey name, p_sortkind text, p_sortkeys name[],
    p_encode_auto boolean, p_backup boolean, p_encodings jsonb, p_identity jsonb
) returns void language plpgsql volatile security definer set search_path = pg_catalog as $$
declare
    k text;
    v jsonb;
begin
    delete from pg_sandbox.rs_table where reloid = rel;
    delete from pg_sandbox.rs_column where reloid = rel;
    insert into pg_sandbox.rs_table (reloid, diststyle, distkey_attnum, sortkey_kind, sortkey_attnums, encode_auto, backup)
    values (
        rel, p_diststyle,
        case when p_distkey is null then null else pg_sandbox.attnum_of(rel, p_distkey) end,
        p_sortkind,
        coalesce((select array_agg(pg_sandbox.attnum_of(rel, s) order by o) from unnest(p_sortkeys) with ordinality u(s, o)), '{}'),
        p_encode_auto, p_backup
    );
    for k, v in select * from jsonb_each(coalesce(p_encodings, '{}')) loop
        insert into pg_sandbox.rs_column (reloid, attnum, encoding)
        values (rel, pg_sandbox.attnum_of(rel, k), lower(v #>> '{}'))
        on conflict (reloid, attnum) do update set encoding = excluded.encoding;
    end loop;
    for k, v in select * from jsonb_each(coalesce(p_identity, '{}')) loop
        insert into pg_sandbox.rs_column (reloid, attnum, identity_seed, identity_step)
        values (rel, pg_sandbox.attnum_of(rel, k), (v ->> 0)::bigint, (v ->> 1)::bigint)
        on conflict (reloid, attnum) do update set identity_seed = excluded.identity_seed, identity_step = excluded.identity_step;
    end loop;
end $$;

-- CREATE TABLE child (LIKE parent): Redshift copies distribution, sort keys and encodings.
create or replace function pg_sandbox.copy_table_attrs(child regclass, parent regclass) returns void
language plpgsql volatile security definer set search_path = pg_catalog as $$
begin
    delete from pg_sandbox.rs_table where reloid = child;
    delete from pg_sandbox.rs_column where reloid = child;
    insert into pg_sandbox.rs_table (reloid, diststyle, distkey_attnum, sortkey_kind, sortkey_attnums, encode_auto, backup)
    select child, t.diststyle,
           (select pg_sandbox.attnum_of(child, a.attname) from pg_attribute a where a.attrelid = parent and a.attnum = t.distkey_attnum),
           t.sortkey_kind,
           coalesce((select array_agg(pg_sandbox.attnum_of(child, a.attname) order by o)
                     from unnest(t.sortkey_attnums) with ordinality u(n, o)
                     join pg_attribute a on a.attrelid = parent and a.attnum = u.n), '{}'),
           t.encode_auto, t.backup
    from pg_sandbox.rs_table t where t.reloid = parent;
    insert into pg_sandbox.rs_column (reloid, attnum, encoding)
    select child, pg_sandbox.attnum_of(child, a.attname), c.encoding
    from pg_sandbox.rs_column c join pg_attribute a on a.attrelid = parent and a.attnum = c.attnum
    where c.reloid = parent and c.encoding is not null;
end $$;

-- ALTER TABLE ... ALTER DISTSTYLE / DISTKEY / SORTKEY / COLUMN ENCODE: metadata only.
create or replace function pg_sandbox.alter_table_attrs(
    rel regclass, p_diststyle text, p_distkey name, p_sortkind text, p_sortkeys name[], p_col name, p_encoding text
) returns void language plpgsql volatile security definer set search_path = pg_catalog as $$
begin
    insert into pg_sandbox.rs_table (reloid) values (rel) on conflict do nothing;
    if p_diststyle is not null then
        update pg_sandbox.rs_table set diststyle = p_diststyle,
            distkey_attnum = case when p_distkey is null then null else pg_sandbox.attnum_of(rel, p_distkey) end
        where reloid = rel;
    end if;
    if p_sortkind is not null then
        update pg_sandbox.rs_table set sortkey_kind = nullif(p_sortkind, 'NONE'),
            sortkey_attnums = coalesce((select array_agg(pg_sandbox.attnum_of(rel, s) order by o)
                                        from unnest(p_sortkeys) with ordinality u(s, o)), '{}')
        where reloid = rel;
    end if;
    if p_col is not null then
        insert into pg_sandbox.rs_column (reloid, attnum, encoding)
        values (rel, pg_sandbox.attnum_of(rel, p_col), lower(p_encoding))
        on conflict (reloid, attnum) do update set encoding = excluded.encoding;
        update pg_sandbox.rs_table set encode_auto = false where reloid = rel;
    end if;
end $$;

create or replace function pg_sandbox.record_view(rel regclass, p_late boolean) returns void
language sql volatile security definer set search_path = pg_catalog as $$
    insert into pg_sandbox.rs_view (reloid, late_binding) values (rel, p_late)
    on conflict (reloid) do update set late_binding = excluded.late_binding;
$$;

-- Default encoding Redshift picks under ENCODE AUTO (AWS "Compression encodings"):
-- sort key columns and BOOLEAN/REAL/DOUBLE raw, integers/decimals/dates/timestamps AZ64,
-- CHAR/VARCHAR LZO. pg_table_def shows raw as 'none'.
create or replace function pg_sandbox.default_encoding(typ oid, is_sortkey boolean) returns text
language sql immutable as $$
    select case
        when is_sortkey then 'none'
        when typ in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype, 'date'::regtype,
                     'timestamp'::regtype, 'timestamptz'::regtype) then 'az64'
        when typ in ('bpchar'::regtype, 'varchar'::regtype, 'text'::regtype) then 'lzo'
        else 'none'
    end
$$;

-- One row per user column with its effective Redshift attributes.
create or replace view pg_sandbox.column_attrs as
select c.oid as reloid, n.nspname as schemaname, c.relname as tablename, a.attnum, a.attname, a.atttypid,
       format_type(a.atttypid, a.atttypmod) as type, a.attnotnull,
       coalesce(t.distkey_attnum = a.attnum, false) as distkey,
       coalesce(array_position(t.sortkey_attnums, a.attnum), 0) as sortpos,
       t.sortkey_kind,
       coalesce(case when rc.encoding = 'raw' then 'none' else rc.encoding end,
                pg_sandbox.default_encoding(a.atttypid, coalesce(array_position(t.sortkey_attnums, a.attnum), 0) > 0)) as encoding,
       rc.identity_seed, rc.identity_step
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_sandbox.rs_table t on t.reloid = c.oid
left join pg_sandbox.rs_column rc on rc.reloid = c.oid and rc.attnum = a.attnum
where c.relkind in ('r', 'p')
  and n.nspname not in ('pg_catalog', 'information_schema', 'pg_sandbox', 'pg_toast')
  and n.nspname not like 'pg\_temp\_%' and n.nspname not like 'pg\_toast\_temp\_%';

-- ---------------------------------------------------------------- system views
drop view if exists pg_sandbox.pg_table_def;
-- Like Redshift, only tables visible through the search_path (pg_table_is_visible also
-- hides a table shadowed by a same-named one earlier on the path). Interleaved sort key
-- positions alternate in sign, as AWS documents.
create view pg_sandbox.pg_table_def as
select ca.schemaname::name as schemaname, ca.tablename::name as tablename, ca.attname::name as "column",
       ca.type::text as type, ca.encoding::char(32) as encoding, ca.distkey as distkey,
       (case when ca.sortkey_kind = 'INTERLEAVED' and ca.sortpos % 2 = 0 then -ca.sortpos else ca.sortpos end)::int as sortkey,
       ca.attnotnull as notnull
from pg_sandbox.column_attrs ca
where pg_table_is_visible(ca.reloid)
-- Redshift lists a table's columns in their declared order; clients rely on it.
order by ca.schemaname, ca.tablename, ca.attnum;

create or replace function pg_sandbox.exact_rows(rel oid) returns bigint
language plpgsql stable as $$
declare
    n bigint;
begin
    execute format('select count(*) from %s', rel::regclass) into n;
    return n;
exception when insufficient_privilege then
    return null;
end $$;

drop view if exists pg_sandbox.svv_table_info;
-- Size mimics Redshift's block accounting roughly: at least one 1 MB block per column
-- (plus 3 hidden columns) per slice, or the real on-disk size if larger. tbl_rows is an
-- exact count(*) plus the rows deleted or updated away since the last VACUUM (as Redshift
-- counts them); estimated_visible_rows is the count(*) alone. Tables without rows are
-- omitted, as on Redshift. Only superusers see any row ("SVV_TABLE_INFO").
create view pg_sandbox.svv_table_info as
with base as (
    select c.oid, n.nspname, c.relname, t.diststyle, t.distkey_attnum, t.sortkey_kind, t.sortkey_attnums,
           coalesce(t.encode_auto, true) as encode_auto, t.create_time,
           pg_sandbox.exact_rows(c.oid) as nrows,
           (select coalesce(sum(d.n), 0) from pg_sandbox.rs_deleted d where d.reloid = c.oid) as ndeleted,
           (select count(*) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as ncols
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_sandbox.rs_table t on t.reloid = c.oid
    where c.relkind in ('r', 'p')
      and n.nspname not in ('pg_catalog', 'information_schema', 'pg_sandbox', 'pg_toast')
      and n.nspname not like 'pg\_temp\_%' and n.nspname not like 'pg\_toast\_temp\_%'
      and pg_sandbox.is_superuser()
), info as (select slices, capacity_mb from pg_sandbox.cluster_info limit 1)
select current_database()::text as database, b.nspname::text as schema, b.oid as table_id, b.relname::text as "table",
       (case when exists (select 1 from pg_sandbox.column_attrs ca where ca.reloid = b.oid and ca.encoding <> 'none')
             then 'Y' else 'N' end || case when b.encode_auto then ', AUTO(ENCODE)' else '' end)::text as encoded,
       (case coalesce(b.diststyle, 'AUTO')
             when 'EVEN' then 'EVEN'
             when 'ALL' then 'ALL'
             when 'KEY' then 'KEY(' || (select attname from pg_attribute where attrelid = b.oid and attnum = b.distkey_attnum) || ')'
             else 'AUTO(ALL)' end)::text as diststyle,
       (case when b.sortkey_kind = 'AUTO' then 'AUTO(SORTKEY)'
             when cardinality(b.sortkey_attnums) > 0 then
                 (select attname from pg_attribute where attrelid = b.oid and attnum = b.sortkey_attnums[1])::text
        end)::text as sortkey1,
       (select max(case when a.atttypmod > 4 then a.atttypmod - 4 end) from pg_attribute a
         where a.attrelid = b.oid and a.attnum > 0 and not a.attisdropped and a.atttypid = 'varchar'::regtype)::int as max_varchar,
       (select ca.encoding from pg_sandbox.column_attrs ca where ca.reloid = b.oid and ca.attnum = b.sortkey_attnums[1])::char(32) as sortkey1_enc,
       coalesce(cardinality(b.sortkey_attnums), 0)::int as sortkey_num,
       greatest(ceil(pg_total_relation_size(b.oid) / 1048576.0)::bigint, (b.ncols + 3) * coalesce(i.slices, 2))::bigint as size,
       round(100.0 * greatest(ceil(pg_total_relation_size(b.oid) / 1048576.0), (b.ncols + 3) * coalesce(i.slices, 2))
             / coalesce(i.capacity_mb, 163840), 4)::numeric(10,4) as pct_used,
       0::bigint as empty,
       (case when coalesce(cardinality(b.sortkey_attnums), 0) > 0 then 0.00 end)::numeric(5,2) as unsorted,
       0.00::numeric(5,2) as stats_off,
       (b.nrows + b.ndeleted)::numeric(38,0) as tbl_rows,
       (case when coalesce(cardinality(b.sortkey_attnums), 0) > 0 then 1.00 end)::numeric(19,2) as skew_sortkey1,
       1.00::numeric(19,2) as skew_rows,
       b.nrows::numeric(38,0) as estimated_visible_rows,
       null::text as risk_event,
       null::numeric(12,2) as vacuum_sort_benefit,
       b.create_time as create_time
from base b left join info i on true
where b.nrows + b.ndeleted > 0;

-- Late-binding views are ordinary PostgreSQL views here (PostgreSQL binds at creation);
-- this view reports which ones were declared WITH NO SCHEMA BINDING.
create or replace view pg_sandbox.svv_late_binding_views as
select n.nspname::text as schemaname, c.relname::text as viewname, c.oid as view_id
from pg_sandbox.rs_view v join pg_class c on c.oid = v.reloid join pg_namespace n on n.oid = c.relnamespace
where v.late_binding;

drop view if exists pg_sandbox.svl_qlog;
create view pg_sandbox.svl_qlog as
select userid, query, xid, pid, starttime, endtime,
       (extract(epoch from endtime - starttime) * 1000000)::bigint as elapsed,
       aborted, label::char(320) as label, left(querytxt, 60)::char(60) as substring,
       null::int as source_query, 'Concurrency Scaling not used'::text as concurrency_scaling_status_txt,
       0 as from_sp_call
from pg_sandbox.query_log where pg_sandbox.sees_user(userid);

-- SYS_QUERY_DETAIL ("SYS_QUERY_DETAIL": one row per step of a query; step_name scan/insert/delete
-- with the permanent table's table_id and table_name), the columns the tool reads, from the same
-- step logs as stl_scan/stl_insert/stl_delete: so it keeps what they keep (seven days here; a
-- stricter window than Redshift's SYS retention can only make usage look older). A regular user
-- sees only their own rows, as in the STL views.
drop view if exists pg_sandbox.sys_query_detail;
create view pg_sandbox.sys_query_detail as
select userid as user_id, query::bigint as query_id, 'scan'::text as step_name, tbl as table_id,
       perm_table_name as table_name, starttime as start_time, endtime as end_time
from pg_sandbox.stl_scan where pg_sandbox.sees_user(userid) and type = 2
union all
select userid, query::bigint, 'insert'::text, tbl, null::char(136), starttime, endtime
from pg_sandbox.stl_insert where pg_sandbox.sees_user(userid)
union all
select userid, query::bigint, 'delete'::text, tbl, null::char(136), starttime, endtime
from pg_sandbox.stl_delete where pg_sandbox.sees_user(userid);

drop view if exists pg_sandbox.stl_query;
create view pg_sandbox.stl_query as
select userid, query, label::char(320) as label, xid, pid, db_name::char(32) as database,
       left(querytxt, 4000)::char(4000) as querytxt, starttime, endtime, aborted
from pg_sandbox.query_log where pg_sandbox.sees_user(userid);

drop view if exists pg_sandbox.stv_recents;
create view pg_sandbox.stv_recents as
select userid, 'Done'::char(20) as status, starttime,
       (extract(epoch from endtime - starttime) * 1000000)::int as duration,
       user_name::char(50) as user_name, db_name::char(50) as db_name,
       left(querytxt, 600)::char(600) as query, pid
from (select * from pg_sandbox.query_log where pg_sandbox.sees_user(userid) order by query desc limit 100) recent
union all
select usesysid::int, 'Running'::char(20), query_start at time zone 'utc', 0,
       usename::char(50), datname::char(50), left(query, 600)::char(600), pid
from pg_stat_activity where datname = current_database() and state = 'active' and pid = pg_backend_pid();

drop view if exists pg_sandbox.stv_sessions;
create view pg_sandbox.stv_sessions as
select (backend_start at time zone 'utc')::timestamp as starttime, pid as process,
       usename::char(50) as user_name, datname::char(50) as db_name,
       0 as session_timeout, 0 as timeout_sec
from pg_stat_activity
where datname = current_database() and backend_type = 'client backend'
  and (usename = current_user or pg_sandbox.is_superuser());

-- ---------------------------------------------------------------- routines, MVs, default privileges, external
-- PG_PROC_INFO: Redshift's pg_proc with the oid named prooid, plus prokind/proargmodes/
-- proallargtypes (PostgreSQL's pg_proc has those columns already).
drop view if exists pg_sandbox.pg_proc_info;
create view pg_sandbox.pg_proc_info as
select p.oid as prooid, p.* from pg_proc p;

-- SVV_MV_INFO / STV_MV_INFO from PostgreSQL's materialized views. Staleness is not tracked
-- here ('f'); every MV is "fully recomputed when refreshed" (state 0); no auto refresh.
drop view if exists pg_sandbox.svv_mv_info;
create view pg_sandbox.svv_mv_info as
select current_database()::char(128) as database_name, m.schemaname::char(128) as schema_name,
       m.matviewowner::char(128) as user_name, m.matviewname::char(128) as name,
       'f'::char(1) as is_stale, 0 as state, 'f'::char(1) as autorefresh, 'f'::char(1) as autorewrite
from pg_matviews m;
drop view if exists pg_sandbox.stv_mv_info;
create view pg_sandbox.stv_mv_info as
select current_database()::char(128) as db_name, m.schemaname::char(128) as schema,
       m.matviewname::char(128) as name, 0::bigint as updated_upto_xid, 'f'::char(1) as is_stale,
       m.matviewowner::char(128) as owner_user_name, 0 as state, 'f'::char(1) as autorefresh,
       'f'::char(1) as autorewrite
from pg_matviews m;

-- SVV_DEFAULT_PRIVILEGES: one row per (owner, schema, object type, privilege, grantee), from
-- PostgreSQL's pg_default_acl (whose columns differ from Redshift's, hence not emulated).
-- Groups are NOLOGIN roles here; Redshift has no types/sequences/schemas defaults (T, S, n).
drop view if exists pg_sandbox.svv_default_privileges;
create view pg_sandbox.svv_default_privileges as
select n.nspname::text as schema_name,
       (case d.defaclobjtype when 'r' then 'RELATION' else 'FUNCTION' end)::text as object_type,
       d.defaclrole::int as owner_id, pg_get_userbyid(d.defaclrole)::text as owner_name, 'user'::text as owner_type,
       a.privilege_type::text as privilege_type, a.grantee::int as grantee_id,
       (case when a.grantee = 0 then 'public' else pg_get_userbyid(a.grantee) end)::text as grantee_name,
       (case when a.grantee = 0 then 'public' when r.rolcanlogin then 'user' else 'group' end)::text as grantee_type,
       a.is_grantable as admin_option
from pg_default_acl d
left join pg_namespace n on n.oid = d.defaclnamespace
cross join lateral aclexplode(d.defaclacl) a
left join pg_roles r on r.oid = a.grantee
where d.defaclobjtype in ('r', 'f')
  -- "SVV_DEFAULT_PRIVILEGES": superusers see every row; "other users can only see default
  -- permissions granted to them" (ACCESS SYSTEM TABLE is not modelled).
  and (pg_sandbox.is_superuser() or a.grantee = (select oid from pg_roles where rolname = current_user));

-- External schemas and tables (Spectrum, federated): PostgreSQL cannot make them, so these
-- are plain metadata tables a test fills to stand in for what Redshift would list.
create table if not exists pg_sandbox.rs_external_schema (
    schemaname text primary key,
    eskind int2 not null default 1,
    esowner int not null default 1,
    databasename text not null,
    esoptions text
);
create table if not exists pg_sandbox.rs_external_table (
    schemaname text not null,
    tablename text not null,
    location text,
    primary key (schemaname, tablename)
);
drop view if exists pg_sandbox.svv_external_schemas;
create view pg_sandbox.svv_external_schemas as
select null::oid as esoid, e.eskind, e.schemaname::name as schemaname, e.esowner, e.databasename, e.esoptions
from pg_sandbox.rs_external_schema e;
drop view if exists pg_sandbox.svv_external_tables;
create view pg_sandbox.svv_external_tables as
select current_database()::text as redshift_database_name, t.schemaname::text as schemaname,
       t.tablename::text as tablename, t.location::text as location
from pg_sandbox.rs_external_table t;

grant select on all tables in schema pg_sandbox to public;

-- ---------------------------------------------------------------- isolation
-- "Isolation levels in Amazon Redshift": SERIALIZABLE or SNAPSHOT per database; new
-- provisioned clusters get SNAPSHOT. PostgreSQL's SERIALIZABLE and REPEATABLE READ (its
-- snapshot isolation) stand in; the proxy reports their conflicts as Redshift's error 1023.
create or replace function pg_sandbox.isolation_of(db oid) returns text language sql stable as $$
    select case when coalesce((select substr(cfg, length('default_transaction_isolation=') + 1)
                               from pg_db_role_setting s, unnest(s.setconfig) cfg
                               where s.setdatabase = db and s.setrole = 0
                                 and cfg like 'default_transaction_isolation=%'), 'read committed') = 'serializable'
                then 'SERIALIZABLE' else 'SNAPSHOT' end
$$;
drop view if exists pg_sandbox.stv_db_isolation_level;
create view pg_sandbox.stv_db_isolation_level as
select d.datname::char(128) as db_name,
       (case pg_sandbox.isolation_of(d.oid) when 'SERIALIZABLE' then 'Serializable' else 'Snapshot Isolation' end)::char(32)
           as isolation_level
from pg_database d
where not d.datistemplate and d.datname <> 'postgres' and pg_sandbox.is_superuser();

do $$
begin
    if not exists (select 1 from pg_db_role_setting s, unnest(s.setconfig) cfg
                   where s.setdatabase = (select oid from pg_database where datname = current_database())
                     and s.setrole = 0 and cfg like 'default_transaction_isolation=%') then
        execute format('alter database %I set default_transaction_isolation = %L', current_database(), 'repeatable read');
    end if;
end $$;

-- ---------------------------------------------------------------- ACLs as Redshift prints them
-- "PG_DEFAULT_ACL": privilege letters a r w d R x t X U C T D(DROP) P(TRUNCATE) A(ALTER), in
-- the order "arwdRxtXUCTDPA", each optionally followed by * (WITH GRANT OPTION); a group
-- grantee reads "group name=.../grantor". PostgreSQL writes TRUNCATE as D, so D becomes P.
-- settings.py puts this on relacl/nspacl/proacl/defaclacl/datacl in select lists; the value
-- is the array's text, as a Redshift client receives it.
create or replace function pg_sandbox.rs_acl_items(acl aclitem[]) returns text[]
language plpgsql stable as $$
declare
    item text;
    m text[];
    grantee text;
    privs text;
    letter text;
    out_privs text;
    order_ text := 'arwdRxtXUCTDPA';
    i int;
    items text[] := '{}';
begin
    if acl is null then
        return null;
    end if;
    foreach item in array acl::text[] loop
        m := regexp_match(item, '^("(?:[^"]|"")*"|[^=]*)=([A-Za-z*]*)/(.*)$');
        if m is null then
            items := items || item;
            continue;
        end if;
        grantee := m[1];
        privs := translate(m[2], 'D', 'P');
        out_privs := '';
        for i in 1 .. length(order_) loop
            letter := substr(order_, i, 1);
            if strpos(privs, letter) > 0 then
                out_privs := out_privs || letter ||
                    case when substr(privs, strpos(privs, letter) + 1, 1) = '*' then '*' else '' end;
            end if;
        end loop;
        if grantee <> '' and exists (select 1 from pg_roles r where not r.rolcanlogin and
               r.rolname = case when grantee like '"%' then replace(substr(grantee, 2, length(grantee) - 2), '""', '"')
                                else grantee end) then
            grantee := 'group ' || grantee;
        end if;
        items := items || (grantee || '=' || out_privs || '/' || m[3]);
    end loop;
    return items;
end $$;
create or replace function pg_sandbox.rs_acl(acl aclitem[]) returns text
language sql stable as $$ select pg_sandbox.rs_acl_items(acl)::text $$;

-- ---------------------------------------------------------------- view definitions
-- A late-binding view's definition names every relation with its schema, as it was written
-- (Redshift keeps the text; PostgreSQL's pg_get_viewdef drops the schema of relations on the
-- search path). settings.py sends pg_get_viewdef here.
create or replace function pg_sandbox.qualified_viewdef(v oid, pretty boolean) returns text
language sql stable set search_path = pg_catalog as $$ select pg_catalog.pg_get_viewdef(v, pretty) $$;
create or replace function pg_sandbox.rs_get_viewdef(v oid, pretty boolean) returns text
language sql stable as $$
    select case when exists (select 1 from pg_sandbox.rs_view w where w.reloid = v and w.late_binding)
                then pg_sandbox.qualified_viewdef(v, pretty)
                else pg_catalog.pg_get_viewdef(v, pretty) end
$$;
create or replace function pg_sandbox.rs_get_viewdef(v oid) returns text
language sql stable as $$ select pg_sandbox.rs_get_viewdef(v, false) $$;
create or replace function pg_sandbox.rs_get_viewdef(v text, pretty boolean) returns text
language sql stable as $$ select pg_sandbox.rs_get_viewdef(v::regclass::oid, pretty) $$;
create or replace function pg_sandbox.rs_get_viewdef(v text) returns text
language sql stable as $$ select pg_sandbox.rs_get_viewdef(v::regclass::oid, false) $$;
-- pg_views with that definition (settings.py sends FROM pg_views here).
create or replace view pg_sandbox.rs_views as
select n.nspname as schemaname, c.relname as viewname, pg_catalog.pg_get_userbyid(c.relowner) as viewowner,
       pg_sandbox.rs_get_viewdef(c.oid, false) as definition
from pg_catalog.pg_class c left join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'v';
grant select on pg_sandbox.rs_views to public;

-- ---------------------------------------------------------------- Redshift-only types
-- VARBYTE ("VARBYTE type") over bytea and SUPER ("SUPER type") over jsonb: domains, so
-- format_type and pg_table_def name them as Redshift does. A JSON null is a value here,
-- distinct from SQL NULL, as in SUPER. The length limit of VARBYTE(n) is not kept.
do $$
begin
    if to_regtype('pg_sandbox.varbyte') is null then
        create domain pg_sandbox.varbyte as bytea;
    end if;
    if to_regtype('pg_sandbox.super') is null then
        create domain pg_sandbox.super as jsonb;
    end if;
end $$;

-- GEOMETRY and GEOGRAPHY ("Querying spatial data"): domains over bytea holding the value's EWKB,
-- at most 1,048,447 bytes. Only what the migration needs: ST_GeomFromEWKB / ST_GeogFromWKB in,
-- ST_AsEWKB out (GEOMETRY only, as documented), and the cast between the two that copies the
-- coordinates ("a simple cast ... only copies the coordinates"). No spatial operation is emulated.
do $$
begin
    if to_regtype('pg_sandbox.geometry') is null then
        create domain pg_sandbox.geometry as bytea check (octet_length(value) between 5 and 1048447);
    end if;
    if to_regtype('pg_sandbox.geography') is null then
        create domain pg_sandbox.geography as bytea check (octet_length(value) between 5 and 1048447);
    end if;
end $$;
create or replace function pg_sandbox.st_geomfromewkb(b bytea) returns pg_sandbox.geometry
language sql immutable strict as $$ select b::pg_sandbox.geometry $$;
create or replace function pg_sandbox.st_geogfromwkb(b bytea) returns pg_sandbox.geography
language sql immutable strict as $$ select b::pg_sandbox.geography $$;
create or replace function pg_sandbox.st_asewkb(g pg_sandbox.geometry) returns pg_sandbox.varbyte
language sql immutable strict as $$ select g::bytea::pg_sandbox.varbyte $$;
create or replace function pg_sandbox.st_asewkb(g pg_sandbox.geography) returns pg_sandbox.varbyte
language plpgsql immutable strict as $$
begin
    raise exception 'function st_asewkb(geography) does not exist' using errcode = '42883',
        hint = 'ST_AsEWKB takes GEOMETRY: cast the value (::geometry)';
end $$;

create or replace function pg_sandbox.from_hex(t text) returns pg_sandbox.varbyte
language sql immutable strict as $$ select decode(t, 'hex')::pg_sandbox.varbyte $$;
-- TO_HEX and JSON_SERIALIZE return VARCHAR, whose limit is 65535 bytes ("Character types"):
-- a longer result is an error ("JSON_SERIALIZE": "returns an error when the JSON format exceeds
-- the VARCHAR limit of the system"), so 32768 bytes of VARBYTE or 64 KB of JSON cannot pass
-- through them. JSON_SERIALIZE_TO_VARBYTE has no such limit (it returns VARBYTE).
create or replace function pg_sandbox.varchar_limit(fn text, r text) returns text
language plpgsql immutable strict as $$
begin
    if octet_length(r) > 65535 then
        raise exception '%: result of % bytes exceeds the VARCHAR limit of 65535 bytes', fn, octet_length(r)
            using errcode = '22001';
    end if;
    return r;
end $$;
create or replace function pg_sandbox.to_hex(b bytea) returns text
language sql immutable strict as $$ select pg_sandbox.varchar_limit('TO_HEX', encode(b, 'hex')) $$;
create or replace function pg_sandbox.json_parse(t text) returns pg_sandbox.super
language sql immutable strict as $$ select t::jsonb::pg_sandbox.super $$;
-- "JSON_SERIALIZE": "If super_expression is NULL, JSON_SERIALIZE returns the JSON string 'null'".
create or replace function pg_sandbox.json_serialize(s jsonb) returns text
language sql immutable as $$ select pg_sandbox.varchar_limit('JSON_SERIALIZE', coalesce(s::text, 'null')) $$;
create or replace function pg_sandbox.json_serialize_to_varbyte(s jsonb) returns pg_sandbox.varbyte
language sql immutable strict as $$ select convert_to(s::text, 'UTF8')::pg_sandbox.varbyte $$;
create or replace function pg_sandbox.json_size(s jsonb) returns integer
language sql immutable strict as $$ select octet_length(s::text) $$;

-- ---------------------------------------------------------------- functions
-- search_path as Redshift reports it (SHOW / current_setting, rewritten by settings.py):
-- "$user" unquoted and the emulation's own schema left out ("search_path" page).
create or replace function pg_sandbox.rs_search_path() returns text
language sql stable as $$
    select coalesce(string_agg(case when m[1] = '"$user"' then '$user' else m[1] end, ', ' order by o), '')
    from regexp_matches(current_setting('search_path'), '("(?:[^"]|"")*"|[^,[:space:]]+)', 'g') with ordinality r(m, o)
    where m[1] not in ('pg_sandbox', '"pg_sandbox"')
$$;

create or replace function pg_sandbox.getdate() returns timestamp
language sql stable as $$ select date_trunc('second', now() at time zone 'utc')::timestamp $$;

-- The COPY engine sets these session settings; Redshift returns 0 / -1 before any COPY.
create or replace function pg_sandbox.pg_last_copy_count() returns bigint
language sql stable as $$ select coalesce(nullif(current_setting('redshift.last_copy_count', true), '')::bigint, 0) $$;
create or replace function pg_sandbox.pg_last_copy_id() returns int
language sql stable as $$ select coalesce(nullif(current_setting('redshift.last_copy_id', true), '')::int, -1) $$;
create or replace function pg_sandbox.pg_last_unload_count() returns bigint
language sql stable as $$ select coalesce(nullif(current_setting('redshift.last_unload_count', true), '')::bigint, 0) $$;
create or replace function pg_sandbox.pg_last_unload_id() returns int
language sql stable as $$ select coalesce(nullif(current_setting('redshift.last_unload_id', true), '')::int, -1) $$;

-- FNV-1a 64-bit. The 64-bit state is kept as two 32-bit halves in bigints so the multiply
-- by the FNV prime (2^40 + 435) never overflows: h*P = h*435 + (h << 40) (mod 2^64).
-- About 0.25 us per byte on PostgreSQL 15 (100k 40-byte strings in ~1 s).
create or replace function pg_sandbox.fnv_bytes(b bytea, basis bigint) returns bigint
language plpgsql immutable strict parallel safe as $$
declare
    lo bigint := basis & 4294967295;
    hi bigint := (basis >> 32) & 4294967295;
    x bigint;
    y bigint;
begin
    for i in 0 .. length(b) - 1 loop
        x := lo # get_byte(b, i);
        y := x * 435;
        hi := (hi * 435 + (y >> 32) + ((x & 16777215) << 8)) & 4294967295;
        lo := y & 4294967295;
    end loop;
    return (hi << 32) | lo;
end $$;

-- Integers are hashed as their little-endian bytes in the type's width (verified against
-- AWS's examples for smallint, integer and bigint).
create or replace function pg_sandbox.fnv_int(v bigint, width int, basis bigint) returns bigint
language plpgsql immutable strict parallel safe as $$
declare
    lo bigint := basis & 4294967295;
    hi bigint := (basis >> 32) & 4294967295;
    x bigint;
    y bigint;
begin
    for i in 0 .. width - 1 loop
        x := lo # ((v >> (8 * i)) & 255);
        y := x * 435;
        hi := (hi * 435 + (y >> 32) + ((x & 16777215) << 8)) & 4294967295;
        lo := y & 4294967295;
    end loop;
    return (hi << 32) | lo;
end $$;

-- PostgreSQL's *send functions give network (big-endian) order; Redshift hashes memory order.
create or replace function pg_sandbox.fnv_bytes_reversed(b bytea, basis bigint) returns bigint
language plpgsql immutable strict parallel safe as $$
declare
    lo bigint := basis & 4294967295;
    hi bigint := (basis >> 32) & 4294967295;
    x bigint;
    y bigint;
begin
    for i in reverse length(b) - 1 .. 0 loop
        x := lo # get_byte(b, i);
        y := x * 435;
        hi := (hi * 435 + (y >> 32) + ((x & 16777215) << 8)) & 4294967295;
        lo := y & 4294967295;
    end loop;
    return (hi << 32) | lo;
end $$;

-- NULL hashes to NULL (AWS does not document NULL; the functions are strict).
create or replace function pg_sandbox.fnv_hash(v smallint, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_int(v, 2, seed) $$;
create or replace function pg_sandbox.fnv_hash(v integer, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_int(v, 4, seed) $$;
create or replace function pg_sandbox.fnv_hash(v bigint, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_int(v, 8, seed) $$;
-- Text: its UTF-8 bytes (verified against AWS's string examples).
create or replace function pg_sandbox.fnv_hash(v text, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_bytes(convert_to(v, 'UTF8'), seed) $$;
create or replace function pg_sandbox.fnv_hash(v varchar, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_bytes(convert_to(v, 'UTF8'), seed) $$;
-- CHAR(n): trailing pad spaces are hashed too (AWS: "does not ignore trailing spaces").
create or replace function pg_sandbox.fnv_hash(v bpchar, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$
    select pg_sandbox.fnv_bytes(convert_to(v::text || repeat(' ', octet_length(v) - octet_length(v::text)), 'UTF8'), seed) $$;
-- The types below follow Redshift's in-memory representation as far as it is known
-- (AWS's examples do not cover them): boolean 1 byte, float 4/8 bytes IEEE little-endian,
-- date int32 days since 2000-01-01, timestamp int64 microseconds since 2000-01-01 (UTC for
-- timestamptz), numeric its unscaled value as int64 when it fits (DECIMAL precision <= 18),
-- else as 16-byte two's complement.
create or replace function pg_sandbox.fnv_hash(v boolean, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_int(v::int, 1, seed) $$;
create or replace function pg_sandbox.fnv_hash(v real, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_bytes_reversed(float4send(v), seed) $$;
create or replace function pg_sandbox.fnv_hash(v double precision, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_bytes_reversed(float8send(v), seed) $$;
create or replace function pg_sandbox.fnv_hash(v date, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$ select pg_sandbox.fnv_int(v - date '2000-01-01', 4, seed) $$;
create or replace function pg_sandbox.fnv_hash(v timestamp, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$
    select pg_sandbox.fnv_int((extract(epoch from v - timestamp '2000-01-01') * 1000000)::bigint, 8, seed) $$;
create or replace function pg_sandbox.fnv_hash(v timestamptz, seed bigint default -3750763034362895579) returns bigint
language sql immutable strict parallel safe as $$
    select pg_sandbox.fnv_int((extract(epoch from v - timestamptz '2000-01-01 00:00:00+00') * 1000000)::bigint, 8, seed) $$;
create or replace function pg_sandbox.fnv_hash(v numeric, seed bigint default -3750763034362895579) returns bigint
language plpgsql immutable strict parallel safe as $$
declare
    unscaled numeric := trunc(v * power(10::numeric, scale(v)));
    u numeric;
    lo numeric;
    hi numeric;
begin
    if unscaled between -9223372036854775808 and 9223372036854775807 then
        return pg_sandbox.fnv_int(unscaled::bigint, 8, seed);
    end if;
    u := case when unscaled < 0 then unscaled + 340282366920938463463374607431768211456 else unscaled end;
    lo := mod(u, 18446744073709551616);
    hi := trunc((u - lo) / 18446744073709551616);
    return pg_sandbox.fnv_int(
        (case when hi >= 9223372036854775808 then hi - 18446744073709551616 else hi end)::bigint, 8,
        pg_sandbox.fnv_int((case when lo >= 9223372036854775808 then lo - 18446744073709551616 else lo end)::bigint, 8, seed));
end $$;

-- ---------------------------------------------------------------- WLM (workload management)
-- STV_WLM_SERVICE_CLASS_CONFIG and STV_WLM_CLASSIFICATION_CONFIG: the queues and the rules that
-- route queries to them, as the cluster's parameter group (wlm_json_configuration) set them at
-- its last reboot (migrator/sandbox/redshift/wlm.py fills them). STV tables: superusers only.
create table if not exists pg_sandbox.wlm_service_class (
    service_class int primary key, queueing_strategy char(32), num_query_tasks int,
    target_num_query_tasks int, evictable char(8), eviction_threshold bigint, query_working_mem int,
    target_query_working_mem int, min_step_mem int, name char(64), max_execution_time bigint,
    user_group_wild_card boolean, query_group_wild_card boolean, concurrency_scaling char(20),
    query_priority char(20), user_role_wild_card boolean
);
create table if not exists pg_sandbox.wlm_classification (
    id int primary key, condition char(128), action_seq int, action char(64), action_service_class int
);
drop view if exists pg_sandbox.stv_wlm_service_class_config;
create view pg_sandbox.stv_wlm_service_class_config as
select * from pg_sandbox.wlm_service_class where pg_sandbox.is_superuser();
drop view if exists pg_sandbox.stv_wlm_classification_config;
create view pg_sandbox.stv_wlm_classification_config as
select * from pg_sandbox.wlm_classification where pg_sandbox.is_superuser();
grant select on pg_sandbox.stv_wlm_service_class_config, pg_sandbox.stv_wlm_classification_config to public;

-- STV_SLICES: one row per slice of the cluster ("STV_SLICES": node, slice, localslice, type).
-- UNLOAD (PARALLEL ON) writes at least one file per slice of this count.
drop view if exists pg_sandbox.stv_slices;
create view pg_sandbox.stv_slices as
select (s.slice / greatest(i.slices_per_node, 1))::int as node, s.slice::int as slice,
       (s.slice % greatest(i.slices_per_node, 1))::int as localslice, 'D'::char(1) as type
from pg_sandbox.cluster_info i, generate_series(0, i.slices - 1) as s(slice);
grant select on pg_sandbox.stv_slices to public;

-- ---------------------------------------------------------------- CHAR / VARCHAR lengths in bytes
-- "Character types": CHAR and VARCHAR lengths are bytes, not characters; a CHAR column holds only
-- single-byte characters; storing a longer string is an error unless the extra characters are all
-- spaces (then it is truncated) ("Significance of trailing blanks"); an explicit cast truncates
-- ("Examples with character types": 'City of South San Francisco'::char(20)).
-- PostgreSQL applies a column's length through the type's length-coercion cast (pg_cast, source =
-- target type) on INSERT, UPDATE, INSERT ... SELECT and CAST; those casts are pointed at the
-- functions below, which count UTF-8 bytes. COPY is checked by the sandbox's COPY itself.
create or replace function pg_sandbox.utf8_prefix(v text, n int) returns text
language plpgsql immutable strict parallel safe as $$
declare
    b bytea := convert_to(v, 'UTF8');
    cut int := n;
begin
    if octet_length(b) <= n then
        return v;
    end if;
    -- Back off to a character boundary: get_byte is 0-based, so byte `cut` is the first one left out.
    while cut > 0 and (get_byte(b, cut) & 192) = 128 loop
        cut := cut - 1;
    end loop;
    return convert_from(substring(b from 1 for cut), 'UTF8');
end $$;

create or replace function pg_sandbox.rs_varchar(v varchar, typmod int, explicit boolean) returns varchar
language plpgsql immutable strict parallel safe as $$
declare
    n int := typmod - 4;
    kept text;
begin
    if typmod < 4 or octet_length(v) <= n then
        return v;
    end if;
    kept := pg_sandbox.utf8_prefix(v, n);
    if explicit or ltrim(substr(v, char_length(kept) + 1), ' ') = '' then
        return kept;
    end if;
    raise exception 'value too long for type character varying(%)', n using errcode = '22001';
end $$;

-- The sandbox's own log tables (written on the system log's connection, which sets
-- pg_sandbox.internal) keep any text, as Redshift's logs show what was sent.
create or replace function pg_sandbox.rs_bpchar(v bpchar, typmod int, explicit boolean) returns bpchar
language plpgsql stable strict parallel safe as $$
declare
    t text := v::text;
    bad text;
begin
    if octet_length(t) <> char_length(t) and not explicit
       and coalesce(current_setting('pg_sandbox.internal', true), '') <> 'on' then
        bad := substring(t from '[^\x01-\x7f]');
        raise exception 'Multibyte character not supported for CHAR (Hint: Try using VARCHAR). Invalid char: %',
            rtrim(regexp_replace(encode(convert_to(bad, 'UTF8'), 'hex'), '(..)', '\1 ', 'g'))
            using errcode = '22001';
    end if;
    return pg_catalog.bpchar(v, typmod, explicit);
end $$;

update pg_catalog.pg_cast set castfunc = 'pg_sandbox.rs_varchar(varchar, integer, boolean)'::regprocedure
where castsource = 'pg_catalog.varchar'::regtype and casttarget = 'pg_catalog.varchar'::regtype;
update pg_catalog.pg_cast set castfunc = 'pg_sandbox.rs_bpchar(bpchar, integer, boolean)'::regprocedure
where castsource = 'pg_catalog.bpchar'::regtype and casttarget = 'pg_catalog.bpchar'::regtype;
