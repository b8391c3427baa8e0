"""Detection: rules R1-R7 over connection attempts, per source address and per user, with the
state each entity keeps between runs (``entity_store``) and a warm cache of it (``record_cache``)."""
