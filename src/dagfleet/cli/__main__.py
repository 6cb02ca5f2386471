"""`python -m dagfleet.cli`: the same as the `dagfleet` command."""

from dagfleet.cli import main

main()
