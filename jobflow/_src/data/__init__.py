"""OneFlow's data pipeline below the job: OFRecord files (``ofrecord``), the resumable
record source (``source``), the decoders (``decoders``), the host graph of the data ops
(``nodes``), the ops themselves (``ops``) and the pipeline that runs them (``pipeline``)."""
