"""Stage 1, pull: the repository cloned or fast-forwarded at the pushed commit (gitpython)."""
