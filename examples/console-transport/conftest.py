# Lets the tests import chatbus_console from this folder without installing it first.
