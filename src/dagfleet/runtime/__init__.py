"""Local runtime: supervised processes, code servers, the central Dagster instance."""
