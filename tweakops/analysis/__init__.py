"""Reading a pulled repository: its entrypoint, imports, requirements, framework and the
inspect record later stages read back."""
