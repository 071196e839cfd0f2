"""Training: skip-gram on the walks. `trainers` holds the interface and the registry; one module
per trainer (`mllib`, `sgns`), and `sgns_kernel`, the compiled kernel of the sgns trainer's tasks."""
