"""Extract: exchange CSV exports -> canonical transactions. `formats` (one module per export
format behind one registry), `chunking` (layout and byte ranges), `parse` (chunk -> legs ->
canonical)."""
