"""Source systems: their contracts and how their deliveries are read."""
