"""Walking: `store` prepares the graph once (CSR shards written by Spark, memory-mapped by tasks);
`engines` holds the interface, the registry and the automatic choice; one module per engine
(`replicated`, `sharded`); `kernels` the numpy step kernels every engine runs, `graph` the graph's
statistics and cumulative weights."""
