"""Walking: `engines` holds the interface, the registry and the automatic choice; one module per
engine (`local`, `distributed`); `kernels` the numpy step kernels every engine runs, `graph` what
every engine's prepare shares."""
