"""What task code and app code call. Re-exported from :mod:`shipyard`."""
