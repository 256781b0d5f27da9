"""Example replacement plugins for chatbus."""
