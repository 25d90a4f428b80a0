"""SeqIO task and mixture registrations (installed as `prompt_tuning.tasks`)."""
