-- Real Redshift: stv_tbl_perm.backup is 0 for tables created with BACKUP NO.
select id, min(backup) from stv_tbl_perm group by id
