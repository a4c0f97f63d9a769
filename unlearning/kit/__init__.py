"""The workshop kit: its synthetic people, the small models taught them, and teaching a model
the session's own data."""
