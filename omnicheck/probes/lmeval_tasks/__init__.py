"""lm-eval task YAMLs for omnicheck's text probes (and the helpers they name with !function)."""
