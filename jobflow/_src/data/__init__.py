"""OneFlow's data pipeline below the job: OFRecord files (``ofrecord``), the resumable
record source (``source``) and the decoders (``decoders``)."""
