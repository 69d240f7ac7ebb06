"""Host-side data: OFRecord files, decoders and OneFlow's image ops (the in-job data pipeline)."""
