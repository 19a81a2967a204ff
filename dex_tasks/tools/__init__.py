"""One thin module per external tool: builds argv, parses output, nothing else."""
