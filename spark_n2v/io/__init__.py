"""Input and files: edge tables (`edges`), our own tables and the other inputs (`tables`), formats
by name (`formats`), and file systems on the driver and in tasks (`files`)."""
