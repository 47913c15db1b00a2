"""Placeholder; filled once checkpoint loading under torch>=2.6 is measured."""
