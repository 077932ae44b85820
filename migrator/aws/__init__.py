"""AWS control plane through boto3. Never touches the checkpoint store."""
