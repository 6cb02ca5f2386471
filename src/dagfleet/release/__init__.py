"""`dagfleet release`: judge commits like the local runtime, write accepted ones into a
deploy repository that Flux applies (releaser.py), with its record (record.py) and
git handling (deployrepo.py). Sits above reconcile (it reuses the publish pipeline's
load check) and render (the manifests), below the service and the CLI."""
