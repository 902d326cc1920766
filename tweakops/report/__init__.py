"""What people look at: the terminal, `status`, the run report with its plots, and the outcome
the email and the report share."""
