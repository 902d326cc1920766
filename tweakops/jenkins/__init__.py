"""Jenkins: the REST client, the jobs rendered from jobs/, the build a stage runs in, the push
hook and the JUnit result."""
