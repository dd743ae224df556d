"""Pages of the platform outside the desk's model admin."""
