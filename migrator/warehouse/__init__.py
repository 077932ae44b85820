"""The warehouse data plane of the unload-copy route: plain functions over a Redshift
session (inventory, object replay, UNLOAD/COPY exactly once, checksums).

Layering: this package talks to Redshift (and, through migrator.aws, to S3/KMS) and returns
result objects; it never imports the store or the engine — strategies record the results.
"""
