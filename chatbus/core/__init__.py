"""The chatbus core: knows no concrete transport or plugin."""
