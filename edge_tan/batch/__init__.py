"""Archive-scale tracking (`edge-tan batch`): one tracker per clip, one runner per worker."""
