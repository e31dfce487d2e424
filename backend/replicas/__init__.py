"""Reads from a PostgreSQL streaming replica (`DATABASE_READ_URL`) with read-your-writes."""
