"""The actor runtime: mailboxes, lifecycle, timers, hibernation, and the system that owns actors."""
