"""Text-to-image generators (registered in GENERATORS). Filled in by the T2I-PAL work."""
