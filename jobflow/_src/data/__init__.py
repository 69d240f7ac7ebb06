"""The host-side data layer: OFRecord files, decoders, image ops and the pipeline that feeds jobs."""
