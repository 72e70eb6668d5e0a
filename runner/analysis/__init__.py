"""What we conclude from a run: summary, failure classes, index ranges."""
