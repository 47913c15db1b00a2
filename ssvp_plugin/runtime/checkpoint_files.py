"""Checkpoint files: never a torn file under a checkpoint's name; weights-only loading. (issue 14)"""
