"""Helpers shared by the integration and e2e tests: real git repos, free ports, waits."""
