"""supernets package."""
