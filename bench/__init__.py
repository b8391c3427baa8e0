"""``make bench``: figures for the local cloud, the provisioning workflow and its cost (nothing asserted)."""
