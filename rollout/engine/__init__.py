"""The pure-Python evaluation core: no Django, only the standard library, mmh3 and re2."""
