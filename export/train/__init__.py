"""Training: warped samples, OHEM/TCM losses, and the resumable, time-budgeted loop."""
