"""A bad video found during training or validation stops the run only after saving its progress. (issue 14)"""
