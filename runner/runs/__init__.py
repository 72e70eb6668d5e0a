"""What a run is and what is done to it: records, shards, submit, watch, retry, cancel."""
