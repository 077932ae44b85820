-- Names read from the catalog are used exactly as stored: a cluster whose users created
-- mixed-case names (with enable_case_sensitive_identifier on) is only reachable by them with
-- the setting on; for lower-case names it changes nothing.
set enable_case_sensitive_identifier to true
