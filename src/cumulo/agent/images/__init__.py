"""Guest image builders: every image Cumulo boots is made here from Debian packages."""
