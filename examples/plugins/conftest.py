# Lets the tests import chatbus_example_plugins from this folder without installing it first.
