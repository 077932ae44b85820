"""migrator: resumable, verifiable migration of Amazon Redshift clusters to KMS or HSM encryption."""

__version__ = "0.1.0"
