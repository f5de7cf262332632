"""sfm-archiver: archive social media unattended and hand validated BagIt bags to preservation."""

__version__ = "0.1.0"
SOFTWARE = f"sfm-archiver/{__version__}"
