"""scaling: the small-scale pre-training study (encoders vs masked vs unmasked decoders)."""
