"""The web dashboard's built assets (``dist/``, made from ``web/`` by ``make install``)."""
