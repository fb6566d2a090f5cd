"""The `pooldoctor` command line: thin click commands over the library."""
