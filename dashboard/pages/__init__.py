"""The dashboard's pages: each a module with ``render(settings, viewer)``."""
