"""NotifyFunction's code: ``logic`` (build, sign, deliver one job event) over ``adapters``
(Secrets Manager, S3 presigning, pinned HTTP delivery), configured by ``settings``."""
