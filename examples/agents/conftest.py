# Lets the tests import the example's modules from this folder.
