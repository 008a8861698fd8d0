"""Pipeline: the Ray task graph of one job (parse -> store -> prices -> tax), its supervisor, and
resumption of unfinished jobs."""
