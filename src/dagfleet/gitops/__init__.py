"""Git: one bare mirror per repo, one checkout per (location, commit), atomic publish.

Everything here shells out to the real git CLI, so credentials, SSH config and
proxies come from the user's own git setup; dagfleet stores none.
"""
