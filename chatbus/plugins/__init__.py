"""Behaviour that ships with chatbus and can be blocked or replaced by name."""
