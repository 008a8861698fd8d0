"""The tax stage: the shell around the pure tax rules of ingest/tax. Where a history's rows come
from, where its derived rows and checkpoints go, and how the work is cut into Ray tasks."""
