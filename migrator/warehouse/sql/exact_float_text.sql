-- Every digit of a REAL/DOUBLE in text output (unloaded files, checksums): Redshift prints
-- DBL_DIG/FLT_DIG + extra_float_digits digits, and 2 is its maximum (17 digits: exact). Set once
-- per session outside any transaction (a ROLLBACK cannot undo it), not before each use.
SET extra_float_digits TO 2
