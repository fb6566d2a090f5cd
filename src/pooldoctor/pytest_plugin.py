"""pytest plugin (inactive until asked for): see issue 6. Placeholder."""
