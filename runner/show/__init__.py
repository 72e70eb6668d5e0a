"""How a run is shown to a person: the terminal."""
