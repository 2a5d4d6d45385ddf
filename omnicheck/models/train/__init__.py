"""Training omnicheck's small gemma4_unified from scratch on generated data (scripts/train_omni.py is the entry).

Nothing here is imported by the plugin; torch and transformers are imported inside functions.
"""
