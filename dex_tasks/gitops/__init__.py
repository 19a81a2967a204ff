"""GitOps logic: overlay editing, tags, history and the plans of bump / promote / rollback."""
