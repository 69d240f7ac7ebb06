"""OneFlow's data pipeline below the job: OFRecord files (``ofrecord``), the resumable
record source (``source``), the decoders (``decoders``), OneFlow's image ops as host
functions (``image_ops``), the host graph of the data ops (``nodes``), the ops themselves
(``ops``) and the pipeline that runs them (``pipeline``)."""
