"""The segment function's code: settings, model code, storage adapter and the job logic.

A package (not loose modules next to app.py) so that several functions' code can be
imported into one process, as the local runtime and the tests do, without name clashes.
"""

import os
import tempfile

_TMP = tempfile.gettempdir()  # /tmp in Lambda

# Ultralytics reads these when it is first imported: keep its settings file under /tmp (the
# only writable path in Lambda), never go online, never pip-install anything at run time.
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(_TMP, "Ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("YOLO_VERBOSE", "0")
os.environ.setdefault("MPLCONFIGDIR", os.path.join(_TMP, "matplotlib"))
