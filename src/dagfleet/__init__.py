"""dagfleet: a GitOps control plane for self-hosted Dagster."""
