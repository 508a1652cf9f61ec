"""A real Slurm cluster on this host's loopback for the Slurm executor's tests."""
